package pod_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/pod"
)

// spares lists the runtime directories of spare inits: those without a
// pod.json.
func spares(t *testing.T, e *env) []string {
	t.Helper()
	ents, err := os.ReadDir(e.opts.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, en := range ents {
		if _, err := os.Stat(filepath.Join(e.opts.RunDir, en.Name(), "pod.json")); err != nil {
			s = append(s, en.Name())
		}
	}
	return s
}

func waitSpares(t *testing.T, e *env, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s := spares(t, e)
		// On disk, and handed to the manager: a spare is claimed only
		// once its init said it is prepared.
		if len(s) == n && e.m.SparesReady() == n {
			if n == 0 {
				return s
			}
			if pids, _ := e.m.Cgroups().Group(s[0]).Procs(); len(pids) == 1 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("spares %v, want %d", s, n)
		}
	}
}

func TestSpares(t *testing.T) {
	e := newEnv(t, func(o *pod.Options) { o.Spares = 2 })
	before := waitSpares(t, e, 2)
	p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{e.sh("app", "echo hi")}})
	if st.State != pod.Exited || logOf(p, "app") != "hi\n" {
		t.Fatalf("pod on a spare init: %+v", st)
	}
	if p.UUID() != before[0] && p.UUID() != before[1] {
		t.Errorf("pod %s did not take a spare init (%v)", p.UUID(), before)
	}
	after := waitSpares(t, e, 2)
	for _, s := range after {
		if s == p.UUID() {
			t.Errorf("the claimed spare is still listed")
		}
	}
	// Closing the manager ends the spares and removes what they had.
	e.m.Close()
	if s := spares(t, e); len(s) != 0 {
		t.Errorf("spares left after Close: %v", s)
	}
	for _, s := range after {
		if e.m.Cgroups().Group(s).Exists() {
			t.Errorf("cgroup of spare %s left", s)
		}
	}
	e.open()
	waitSpares(t, e, 2)
	if _, err := e.m.Get(after[0]); err == nil {
		t.Error("a spare is listed as a pod")
	}
}
