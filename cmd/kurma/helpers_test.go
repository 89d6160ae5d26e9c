package main

import (
	"bytes"
	"os/exec"
	"sync"
)

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// syncBuffer is a bytes.Buffer for a writer and a reader in two
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
