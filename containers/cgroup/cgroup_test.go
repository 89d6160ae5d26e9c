package cgroup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func privileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv("KURMA_TEST_PRIVILEGED") != "1" {
		t.Skip("needs root and KURMA_TEST_PRIVILEGED=1")
	}
}

// hierarchies are the versions this host can test.
func hierarchies(t *testing.T) map[string]*Hierarchy {
	hs := map[string]*Hierarchy{}
	if h, err := Detect("kurma-test"); err == nil {
		hs[fmt.Sprintf("detected-v%d", h.Version)] = h
	}
	if h, err := NewV1("kurma-test"); err == nil {
		hs["v1"] = h
	}
	if len(hs) == 0 {
		t.Skip("no cgroup hierarchy")
	}
	return hs
}

func TestGroupKillRemove(t *testing.T) {
	privileged(t)
	for name, h := range hierarchies(t) {
		t.Run(name, func(t *testing.T) {
			id := fmt.Sprintf("test-%d", time.Now().UnixNano())
			g, err := h.Create(id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Create(id); err == nil {
				t.Error("creating an existing group succeeded")
			}
			// The shell forks only once it is in the group (v1 adds it
			// after it starts).
			cmd := exec.Command("/bin/sh", "-c", "read x; sleep 100 & sleep 100 & wait")
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{}
			fd, err := g.Open()
			if err != nil {
				t.Fatal(err)
			}
			if fd != nil {
				cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(fd.Fd())
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if fd != nil {
				fd.Close()
			} else if err := g.Add(cmd.Process.Pid); err != nil {
				t.Fatal(err)
			}
			in.Write([]byte("go\n"))
			go cmd.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				pids, err := g.Procs()
				if err != nil {
					t.Fatal(err)
				}
				if len(pids) >= 3 {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("processes in the group: %v", pids)
				}
				time.Sleep(5 * time.Millisecond)
			}
			short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancelShort()
			if err := g.Remove(short); err == nil {
				// rmdir of a populated group fails; Remove retries until ctx ends.
				t.Fatal("removed a populated group")
			}
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := g.Kill(ctx); err != nil {
				t.Fatal(err)
			}
			if pids, _ := g.Procs(); len(pids) != 0 {
				t.Fatalf("left after kill: %v", pids)
			}
			if err := g.Remove(ctx); err != nil {
				t.Fatal(err)
			}
			if g.Exists() {
				t.Fatal("group still exists")
			}
			if err := g.Remove(ctx); err != nil {
				t.Errorf("removing a removed group: %v", err)
			}
		})
	}
}

func TestV1Roots(t *testing.T) {
	roots, err := V1Roots()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, r := range roots {
		if !strings.Contains(string(data), " "+r+" ") || !filepath.IsAbs(r) {
			t.Errorf("root %s is not a mount point", r)
		}
	}
}
