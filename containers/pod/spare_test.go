package pod_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// nices lists the distinct nice values of a process's threads.
func nices(t *testing.T, pid int) string {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	seen := map[string]bool{}
	var out []string
	for _, task := range tasks {
		// Field 19 is the nice value; the command (2) has no space here.
		if f := strings.Fields(readFile(task)); len(f) > 18 && !seen[f[18]] {
			seen[f[18]] = true
			out = append(out, f[18])
		}
	}
	return strings.Join(out, ",")
}

func TestSpares(t *testing.T) {
	e := newEnv(t, func(o *pod.Options) { o.Spares = 2 })
	before := waitSpares(t, e, 2)
	// A spare waits nicer than the daemon; its pod runs at the daemon's
	// priority, every thread of its init.
	daemon, _ := strconv.Atoi(nices(t, os.Getpid()))
	pids, _ := e.m.Cgroups().Group(before[0]).Procs()
	if want := strconv.Itoa(min(daemon+10, 19)); len(pids) != 1 || nices(t, pids[0]) != want {
		t.Errorf("spare init %v nice %s, want %s", pids, nices(t, pids[0]), want)
	}
	p := e.create(pod.CreateOptions{Images: []pod.ImageApp{e.sh("app", "echo hi; exec sleep 100")}})
	if got := nices(t, p.Status().Pid); got != strconv.Itoa(daemon) {
		t.Errorf("the init of a pod from a spare has nice values %s, want the daemon's, %d", got, daemon)
	}
	waitLog(t, p, "app", "hi") // a stop at once could come before the echo
	if err := p.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.State != pod.Stopped || logOf(p, "app") != "hi\n" {
		t.Fatalf("pod on a spare init: %+v", st)
	}
	if p.UUID() != before[0] && p.UUID() != before[1] {
		t.Errorf("pod %s did not take a spare init (%v)", p.UUID(), before)
	}
	// The spare's writable layer, made ahead, is the app's.
	if fi, err := os.Stat(filepath.Join(p.Dir(), "app.upper")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the app's writable layer: %v %v", fi, err)
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
	if disks, _ := os.ReadDir(filepath.Join(e.opts.Dir, ".spares")); len(disks) != 0 {
		t.Errorf("spares' directories left on disk after Close: %v", disks)
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
