package stage

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The init is PID 1 of the pod: every orphan of the pod becomes its child
// and must be reaped. The reaper waits for any child (wait4(-1)); the
// processes the init starts itself are started through spawn, which
// registers the PID under the same lock the reaper takes, so no exit
// status is lost to it.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan ExitStatus
}

func startReaper() *reaper {
	r := &reaper{waiting: map[int]chan ExitStatus{}}
	r.start()
	return r
}

// start reaps on every SIGCHLD, and once now for children that ended
// before.
func (r *reaper) start() {
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGCHLD)
	go func() {
		for range sig {
			r.reap()
		}
	}()
	r.reap()
}

func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return // none exited (0) or no children at all (ECHILD)
		}
		if ch, ok := r.waiting[pid]; ok {
			delete(r.waiting, pid)
			ch <- exitStatus(syscall.WaitStatus(ws))
		}
	}
}

// lost ends the wait for processes that are no children of this
// process (a resumed init's apps that the one before reaped, which
// compact rules out): exit status 255, rather than a pod that never
// ends.
func (r *reaper) lost() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, ch := range r.waiting {
		var info unix.Siginfo
		if unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil) == unix.ECHILD {
			fmt.Fprintf(os.Stderr, "stage-init: process %d is gone, its exit status lost\n", pid)
			delete(r.waiting, pid)
			ch <- ExitStatus{Code: 255}
		}
	}
}

// procSpec is a process to start in the calling thread's root.
type procSpec struct {
	path  string
	argv  []string
	env   []string
	dir   string
	cred  *syscall.Credential
	files []uintptr // become fds 0, 1, 2, ...
	tty   bool      // fd 0 is a terminal to make the controlling one
	// iso confines the process (nil: every capability, nothing else);
	// cgroup places it in the app's groups (nil: the init's).
	iso    *Isolation
	cgroup *AppCgroup
	// ns are the pod's namespaces the process joins (a pod in a user
	// namespace); nil: it stays in the init's.
	ns []nsJoin
}

// spawn starts p from the calling thread (so in its mount namespace and
// root) in a session of its own, and returns its PID and a channel that
// receives its exit status.
func (r *reaper) spawn(p procSpec) (int, <-chan ExitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := forkExec(p)
	if err != nil {
		return 0, nil, &os.PathError{Op: "exec", Path: p.path, Err: err}
	}
	ch := make(chan ExitStatus, 1)
	r.waiting[pid] = ch
	return pid, ch, nil
}
