package boot

import (
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReaperCollectsOrphansAndKeepsOwnStatus makes the test process a
// child subreaper, as PID 1 is for the whole system: a double-forked
// grandchild is reparented to it and must be reaped (no zombie left),
// while a child started through the reaper gets its own exit status.
func TestReaperCollectsOrphansAndKeepsOwnStatus(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	r := newReaper()

	// The shell exits at once; its background child becomes our orphan.
	orphan := exec.Command("/bin/sh", "-c", "sleep 0.2 & exit 0")
	shellDone, err := r.Start(orphan)
	if err != nil {
		t.Fatal(err)
	}
	own := exec.Command("/bin/sh", "-c", "sleep 0.4; exit 7")
	ownDone, err := r.Start(own)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	var ownStatus unix.WaitStatus
	gotShell, gotOwn := false, false
	for !gotOwn || !gotShell || r.orphansReaped() < 1 {
		r.Reap()
		select {
		case ws := <-shellDone:
			gotShell = true
			if ws.ExitStatus() != 0 {
				t.Errorf("shell exit status %d", ws.ExitStatus())
			}
		case ownStatus = <-ownDone:
			gotOwn = true
		case <-deadline:
			t.Fatalf("after 10s: shell %v, own %v, orphans reaped %d", gotShell, gotOwn, r.orphansReaped())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if ownStatus.ExitStatus() != 7 {
		t.Errorf("own child's exit status = %d, want 7", ownStatus.ExitStatus())
	}
	// Nothing is left to wait for: no zombie.
	var ws unix.WaitStatus
	if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); pid > 0 || err != unix.ECHILD {
		t.Errorf("wait4 after reaping = %d, %v; want ECHILD", pid, err)
	}
}
