package stage

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Starting a pod leaves the init with more memory than supervising it
// needs: OS threads that blocking syscalls and locked threads made
// (each with its stacks), and a heap shaped by the start. Once the pod
// has run for a while and nothing is in flight, the init compacts
// itself: it execs its own binary again ("stage-init resume FD"), which
// takes over the running pod from a state it hands over in a memfd,
// with the descriptors it must keep (control and metadata listeners,
// the apps' mount namespaces and log pipes). The PID, the children and
// the pod do not change; only the Go runtime is new.

// compactAfter is how long a pod runs before its init compacts itself.
const compactAfter = time.Second

const resumeArg = "resume"

type resumeState struct {
	Config   *Config     `json:"config"`
	Status   Status      `json:"status"`
	Control  int         `json:"control"`
	Listener int         `json:"listener"` // -1: none
	Apps     []resumeApp `json:"apps"`
	// Namespaces and NSFDs are the pod's namespaces (a pod in a user
	// namespace), kinds and descriptors.
	Namespaces []string `json:"namespaces,omitempty"`
	NSFDs      []int    `json:"nsFDs,omitempty"`
	// StopGrace is set when a stop was asked during the handover.
	StopGrace *time.Duration `json:"stopGrace,omitempty"`
	// AppOOMScoreAdj is the oom_score_adj the init started with, its
	// processes' default (the init's own is -1000 now).
	AppOOMScoreAdj int `json:"appOOMScoreAdj"`
}

type resumeApp struct {
	Pid    int      `json:"pid"`
	MntNS  int      `json:"mntns"`
	LogR   int      `json:"logR"`
	Out    int      `json:"out"`
	Path   string   `json:"path"`
	Dir    string   `json:"dir"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups"`
}

// compactLater compacts the init after compactAfter, when nothing is in
// flight; it tries a few times, then gives up: the pod runs on as it is,
// with what the start left returned to the system. (Not at once: a
// forced collection right after the start would hold up an app that
// ends at once, the init having one thread for Go code.)
func (in *initProc) compactLater() {
	defer debug.FreeOSMemory()
	for range 10 {
		time.Sleep(compactAfter)
		done, err := in.compact()
		if err != nil {
			fmt.Fprintf(os.Stderr, "stage-init: compact: %v\n", err)
			return
		}
		if done {
			return
		}
	}
}

// compact execs the init anew, if the pod is quiet: every app running,
// no request, handler or stop in flight. It returns false when it did
// not (now); it does not return when it did.
func (in *initProc) compact() (bool, error) {
	// With the reaper's lock held, no exit is handled: an app that ends
	// meanwhile stays a zombie for the next init to reap.
	in.reaper.mu.Lock()
	defer in.reaper.mu.Unlock()
	in.mu.Lock()
	quiet := in.quiet()
	if quiet {
		in.compacting = true
	}
	in.mu.Unlock()
	if !quiet {
		return false, nil
	}
	// No new request: the control socket stops accepting.
	_ = in.ctl.SetDeadline(time.Now()) // a unix listener always takes a deadline
	paused := false
	select {
	case <-in.servePaused:
		paused = true
	case <-time.After(time.Second): // serve is not running: give up, and run it again
	}
	in.flush() // nothing changes the status now: the reaper is held, requests are not taken
	in.mu.Lock()
	if in.busy > 0 || !paused {
		// A request came in before the socket stopped accepting.
		in.compacting = false
		in.mu.Unlock()
		_ = in.ctl.SetDeadline(time.Time{}) // as above
		go in.serve()
		return false, nil
	}
	for _, a := range in.apps {
		a.log.pause()
	}
	st := resumeState{Config: in.cfg, Status: in.status, Listener: -1, StopGrace: in.pendingStop, AppOOMScoreAdj: appOOMScoreAdj}
	var keep []int
	ctlFile, err := in.ctl.File()
	if err != nil {
		in.mu.Unlock()
		return false, err
	}
	st.Control = sysfd(ctlFile)
	keep = append(keep, st.Control)
	if in.listener != nil {
		st.Listener = sysfd(in.listener)
		keep = append(keep, st.Listener)
	}
	if in.ns != nil {
		st.Namespaces, st.NSFDs = in.ns.Kinds, in.ns.fds()
		keep = append(keep, st.NSFDs...)
	}
	for _, a := range in.apps {
		ra := resumeApp{Pid: a.pid, MntNS: int(a.mntns.Fd()), LogR: sysfd(a.log.r), Out: int(a.out.Fd()), Path: a.path, Dir: a.dir, UID: a.cred.Uid, GID: a.cred.Gid, Groups: a.cred.Groups}
		st.Apps = append(st.Apps, ra)
		keep = append(keep, ra.MntNS, ra.LogR, ra.Out)
	}
	data, err := json.Marshal(&st)
	if err != nil {
		in.mu.Unlock()
		return false, err
	}
	mfd, err := unix.MemfdCreate("kurma-stage-state", 0)
	if err != nil {
		in.mu.Unlock()
		return false, err
	}
	if _, err := unix.Write(mfd, data); err != nil {
		in.mu.Unlock()
		return false, err
	}
	keep = append(keep, mfd)
	for _, fd := range keep {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			in.mu.Unlock()
			return false, err
		}
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		exe = "/proc/self/exe"
	}
	// The descriptors kept are now inherited by exec, and by nothing
	// else: no process is started while in.mu and the reaper are held.
	// fd 3, to the daemon that started the pod, closes: the daemon waits
	// for the init's exit instead of its "ended".
	err = syscall.Exec("/proc/self/exe", []string{exe, Verb, resumeArg, strconv.Itoa(mfd)}, []string{"GOMAXPROCS=1"})
	in.mu.Unlock()
	return false, fmt.Errorf("exec: %w", err)
}

// quiet reports whether the pod may be handed over to a new init: no
// stop or request in flight, no interactive app, and every app running,
// not reaped. An app the reaper has reaped but whose exit its waiter has
// not taken yet is not running: its status is in this process only, and
// a new init would wait for it forever. in.mu and in.reaper.mu are held.
func (in *initProc) quiet() bool {
	if in.stopping || in.busy > 0 {
		return false
	}
	for _, a := range in.apps {
		if a.term != nil {
			return false // its terminal and its relay are this process's
		}
		a.mu.Lock()
		running := !a.exited && a.pid > 0
		a.mu.Unlock()
		if _, waited := in.reaper.waiting[a.pid]; !running || !waited {
			return false
		}
	}
	return true
}

// resume is Main for an init that replaces a compacting one.
func resume(stateFD string) int {
	fd, err := strconv.Atoi(stateFD)
	if err != nil {
		return 1
	}
	f := os.NewFile(uintptr(fd), "state")
	data, err := readAllAt(f)
	f.Close()
	var st resumeState
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil || st.Config == nil || len(st.Apps) != len(st.Config.Apps) {
		fmt.Fprintf(os.Stderr, "stage-init: resume: bad state: %v\n", err)
		_ = unix.Kill(-1, unix.SIGKILL) // the pod cannot be supervised; the daemon sees it fail
		return 1
	}
	in := &initProc{cfg: st.Config, status: st.Status, servePaused: make(chan struct{}, 1)}
	appOOMScoreAdj = st.AppOOMScoreAdj
	if len(st.NSFDs) > 0 {
		files := make([]*os.File, len(st.NSFDs))
		for i, fd := range st.NSFDs {
			files[i] = os.NewFile(uintptr(fd), "namespace")
		}
		ns, err := receiveNamespaces(st.Namespaces, files)
		if err != nil {
			fmt.Fprintf(os.Stderr, "stage-init: resume: %v\n", err)
			_ = unix.Kill(-1, unix.SIGKILL) // the pod's processes could not be started in it; the daemon sees it fail
			return 1
		}
		in.ns = ns
	}
	in.reaper = &reaper{waiting: map[int]chan ExitStatus{}}
	for i, ra := range st.Apps {
		a := &app{cfg: st.Config.Apps[i], ended: make(chan struct{}), mntns: os.NewFile(uintptr(ra.MntNS), "mntns"), path: ra.Path, dir: ra.Dir,
			cred: &syscall.Credential{Uid: ra.UID, Gid: ra.GID, Groups: ra.Groups}, out: os.NewFile(uintptr(ra.Out), "log"), pid: ra.Pid}
		ch := make(chan ExitStatus, 1)
		in.reaper.waiting[ra.Pid] = ch
		a.exit = ch
		a.log = newLog(LogPath(in.cfg.Dir, a.cfg.Name), in.cfg.LogMaxBytes)
		// Made blocking by the old init's Fd(): the poller needs it not.
		_ = unix.SetNonblock(ra.LogR, true) // a pipe always takes it
		go a.log.copyFrom(os.NewFile(uintptr(ra.LogR), "log"))
		in.apps = append(in.apps, a)
	}
	in.reaper.start()
	in.reaper.lost()
	l, err := net.FileListener(os.NewFile(uintptr(st.Control), "control"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage-init: resume: control socket: %v\n", err)
		_ = unix.Kill(-1, unix.SIGKILL) // as above
		return 1
	}
	in.ctl = l.(*net.UnixListener)
	in.ctl.SetUnlinkOnClose(false)
	if st.Listener >= 0 {
		_ = unix.SetNonblock(st.Listener, true) // a socket always takes it
		in.listener = os.NewFile(uintptr(st.Listener), "metadata")
	}
	go in.serve()
	in.handleSignals()
	if st.StopGrace != nil {
		in.stop(*st.StopGrace, true)
	}
	return in.supervise()
}

func readAllAt(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxMessage {
		return nil, errors.New("state too large")
	}
	buf := make([]byte, st.Size())
	_, err = f.ReadAt(buf, 0)
	return buf, err
}
