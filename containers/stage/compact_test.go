package stage

import (
	"os/exec"
	"testing"
	"time"
)

// An app the reaper has reaped, whose waiter has not taken its exit yet,
// keeps the init from compacting: the new init would wait for it
// forever (a service that exits as its pod compacts never ended).
func TestQuietNeedsEveryAppUnreaped(t *testing.T) {
	r := &reaper{waiting: map[int]chan ExitStatus{}}
	a, b := &app{pid: 100}, &app{pid: 101}
	in := &initProc{reaper: r, apps: []*app{a, b}}
	r.waiting[100], r.waiting[101] = make(chan ExitStatus, 1), make(chan ExitStatus, 1)
	if !in.quiet() {
		t.Fatal("two running apps: not quiet")
	}
	delete(r.waiting, 101) // reaped; its exit is in its channel
	if in.quiet() {
		t.Error("quiet with an app reaped and its exit not taken")
	}
	r.waiting[101] = make(chan ExitStatus, 1)
	b.exited = true
	if in.quiet() {
		t.Error("quiet with an app exited")
	}
	b.exited = false
	in.busy = 1
	if in.quiet() {
		t.Error("quiet with a request in flight")
	}
}

// A process waited for that is no child of this one (a resumed init's
// app the one before reaped) ends with 255, and one that is a child is
// still waited for.
func TestReaperLost(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	r := &reaper{waiting: map[int]chan ExitStatus{}}
	gone, alive := make(chan ExitStatus, 1), make(chan ExitStatus, 1)
	r.waiting[1], r.waiting[child.Process.Pid] = gone, alive
	r.lost()
	select {
	case st := <-gone:
		if st.Code != 255 {
			t.Errorf("lost process: %+v, want code 255", st)
		}
	case <-time.After(time.Second):
		t.Error("the wait for a process that is no child did not end")
	}
	if _, ok := r.waiting[child.Process.Pid]; !ok || len(alive) != 0 {
		t.Error("a running child is no longer waited for")
	}
}
