package pod_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/cgroup"
	"github.com/kurmaos/kurma/containers/pod"
)

func TestStopIgnoringSIGTERM(t *testing.T) {
	e := newEnv(t)
	p := e.create(pod.CreateOptions{Images: []pod.ImageApp{
		e.sh("stubborn", "trap '' TERM; echo ready; while :; do sleep 0.05; done"),
		e.sh("polite", "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done"),
	}})
	if st := p.Status(); st.State != pod.Running || st.Pid == 0 {
		t.Fatalf("status %+v, want running", st)
	}
	// Running is exec'd: the shells set their traps a moment later.
	waitLog(t, p, "stubborn", "ready")
	waitLog(t, p, "polite", "ready")
	grace := 500 * time.Millisecond
	start := time.Now()
	if err := p.Stop(context.Background(), grace); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	st := p.Status()
	codes := exitCodes(st)
	if st.State != pod.Stopped || codes["stubborn"] != 128+9 || codes["polite"] != 0 {
		t.Fatalf("status %+v (codes %v), want stopped, stubborn killed, polite 0", st, codes)
	}
	if took < grace {
		t.Errorf("stopped in %v, before the grace period of %v", took, grace)
	}
	if !strings.Contains(logOf(p, "polite"), "bye") {
		t.Error("the polite app got no SIGTERM")
	}
	// Stopping an ended pod is an invalid transition.
	var te *pod.TransitionError
	if err := p.Stop(context.Background(), grace); !errors.As(err, &te) || te.From != pod.Stopped {
		t.Errorf("second stop: %v, want a TransitionError from stopped", err)
	}
	checkRemoved(t, e, p)
}

func TestStopOnFailure(t *testing.T) {
	e := newEnv(t)
	_, st := e.run(pod.CreateOptions{StopOnFailure: true, StopGrace: time.Second, Images: []pod.ImageApp{
		e.sh("fails", "sleep 0.1; exit 2"),
		e.sh("long", "exec sleep 100"),
	}})
	codes := exitCodes(st)
	if st.State != pod.Exited || codes["fails"] != 2 || codes["long"] != 128+15 {
		t.Fatalf("status %+v (codes %v), want exited, fails=2, long=143 (SIGTERM)", st, codes)
	}
}

// checkRemoved removes a pod and checks that nothing of it is left:
// directory, cgroup, mounts, processes.
func checkRemoved(t *testing.T, e *env, p *pod.Pod) {
	t.Helper()
	if err := e.m.Remove(context.Background(), p.UUID()); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.State != pod.Removed {
		t.Errorf("state after remove %s, want removed", st.State)
	}
	for _, d := range []string{p.Dir(), p.RunDir()} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("pod directory %s left: %v", d, err)
		}
	}
	if p.Cgroup().Exists() {
		t.Errorf("cgroup left: %v", p.Cgroup().Dirs)
	}
	if _, err := e.m.Get(p.UUID()); !errors.Is(err, pod.ErrNotFound) {
		t.Errorf("get after remove: %v", err)
	}
	if m := append(mountsUnder(t, p.Dir()), mountsUnder(t, p.RunDir())...); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// mountsUnder lists the host's mounts under dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir) {
			found = append(found, fields[4])
		}
	}
	return found
}

func TestRemoveRunningPod(t *testing.T) {
	e := newEnv(t, func(o *pod.Options) { o.StopGrace = 200 * time.Millisecond })
	p := e.create(pod.CreateOptions{Images: []pod.ImageApp{e.sh("app", "trap '' TERM; (sleep 100 &); while :; do sleep 0.05; done")}})
	pid := p.Status().Pid
	checkRemoved(t, e, p)
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Errorf("the pod's init (%d) still runs", pid)
	}
}

func TestCgroupV1(t *testing.T) {
	privileged(t)
	h, err := cgroup.NewV1("kurma-test-v1")
	if err != nil {
		t.Skip(err)
	}
	e := newEnv(t, func(o *pod.Options) { o.Cgroups = h })
	p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{e.sh("app", "cat /proc/self/cgroup")}})
	if st.State != pod.Exited {
		t.Fatal(st)
	}
	in := 0
	for _, l := range strings.Split(logOf(p, "app"), "\n") {
		if strings.HasSuffix(l, "/kurma-test-v1/"+p.UUID()) {
			in++
		}
	}
	if in != len(h.Roots) {
		t.Errorf("the app is in %d of the %d v1 hierarchies:\n%s", in, len(h.Roots), logOf(p, "app"))
	}
	checkRemoved(t, e, p)
}

func TestLogCap(t *testing.T) {
	e := newEnv(t, func(o *pod.Options) { o.LogMaxBytes = 8192 })
	p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{e.sh("app", "i=0; while [ $i -lt 2000 ]; do echo line $i of a runaway app; i=$((i+1)); done; echo the end")}})
	if st.State != pod.Exited {
		t.Fatal(st)
	}
	cur, prev := logOf(p, "app"), readFile(p.LogPath("app")+".1")
	if len(cur)+len(prev) > 8192 {
		t.Errorf("logs hold %d bytes, cap 8192", len(cur)+len(prev))
	}
	if !strings.HasSuffix(cur, "the end\n") {
		t.Errorf("the last output is missing: %q", cur[max(0, len(cur)-100):])
	}
}

// A pod whose init dies (here SIGKILLed from the host) is failed, with
// the reason, and its apps are gone with the init's PID namespace.
func TestInitKilled(t *testing.T) {
	e := newEnv(t)
	p := e.create(pod.CreateOptions{Images: []pod.ImageApp{e.sh("app", "exec sleep 100")}})
	if err := syscall.Kill(p.Status().Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := wait(t, p)
	if st.State != pod.Failed || !strings.Contains(st.Error, "init") {
		t.Errorf("status %+v, want failed because its init died", st)
	}
	if pids, _ := p.Cgroup().Procs(); len(pids) != 0 {
		t.Errorf("processes left in the pod's cgroup: %v", pids)
	}
	checkRemoved(t, e, p)
}
