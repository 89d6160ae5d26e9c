package boot

import (
	"os/exec"
	"sync"

	"golang.org/x/sys/unix"
)

// PID 1 inherits every orphan of the system and must reap them, or they
// stay zombies forever. The reaper waits for any child (wait4(-1)); a
// child that PID 1 started itself and wants the status of is started
// through Start, which registers its PID under the same lock the reaper
// takes, so no exit status is ever lost to the reaper.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
	reaped  int // orphans reaped that nobody waited for
}

func newReaper() *reaper {
	return &reaper{waiting: map[int]chan unix.WaitStatus{}}
}

// Start starts cmd and returns a channel that receives its wait status.
// The caller must not call cmd.Wait, and should give the command *os.File
// stdio (or none), since no Wait will close pipes.
func (r *reaper) Start(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[cmd.Process.Pid] = ch
	return ch, nil
}

func (r *reaper) orphansReaped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped
}

// Reap collects every child that has exited; it runs on SIGCHLD.
func (r *reaper) Reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return // no more exited children (0), or none at all (ECHILD)
		}
		r.mu.Lock()
		ch, ok := r.waiting[pid]
		delete(r.waiting, pid)
		if !ok {
			r.reaped++
		}
		r.mu.Unlock()
		if ok {
			ch <- ws
		}
	}
}
