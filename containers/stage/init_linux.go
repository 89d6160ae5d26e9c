package stage

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initProc is the pod's PID 1.
type initProc struct {
	cfg    *Config
	reaper *reaper
	apps   []*app

	mu       sync.Mutex // guards status, stopping, stopped, busy, compacting, pendingStop
	status   Status
	stopping bool
	stopped  bool // ended by a stop request
	busy     int  // control requests being handled
	// compacting is set while the init hands the pod over to a new
	// one (see compact); a stop asked meanwhile is handed over too.
	compacting  bool
	pendingStop *time.Duration
	servePaused chan struct{} // serve stopped accepting for a compaction

	sw       statusWriter
	listener *os.File // metadata listener in the pod's network namespace
	ctl      *net.UnixListener
	// ns are the namespaces of a pod in a user namespace, which its
	// apps join; nil: the pod's namespaces are the init's.
	ns *Namespaces
}

// Main is the in-pod init: the entry point of "kurma stage-init". It
// returns the process's exit status.
func Main() int {
	// The pod's processes must not be able to ptrace their init, which
	// holds descriptors of the host (THREATS.md 25).
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) // best effort: capabilities are the real guard
	unix.Umask(0o022)
	debug.SetGCPercent(50)
	// Nothing the init inherited may reach an app but what it passes on
	// purpose (THREATS.md 23): every descriptor from 3 up is close-on-exec.
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fmt.Fprintf(os.Stderr, "stage-init: close_range: %v\n", err)
		return 1
	}
	if err := openHostRoot(); err != nil {
		fmt.Fprintf(os.Stderr, "stage-init: open /: %v\n", err)
		return 1
	}
	if len(os.Args) > 3 && os.Args[2] == resumeArg {
		return resume(os.Args[3])
	}
	protectFromOOMKiller()
	f := os.NewFile(3, "stage")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage-init: fd 3: %v\n", err)
		return 1
	}
	conn := c.(*net.UnixConn)
	var msg Message
	files, err := Recv(conn, &msg)
	if err != nil || msg.Type != MsgPrepare {
		closeAll(files)
		fmt.Fprintf(os.Stderr, "stage-init: no prepare: %v\n", err)
		return 1
	}
	ns, err := receiveNamespaces(msg.Namespaces, files)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage-init: %v\n", err)
		_ = Send(conn, Message{Type: MsgFailed, Error: err.Error()}) // the daemon sees the exit anyway
		return 1
	}
	p, err := prepare(&msg, ns)
	if err != nil {
		fmt.Fprintf(os.Stderr, "stage-init: %v\n", err)
		_ = Send(conn, Message{Type: MsgFailed, Error: err.Error()}) // as above
		return 1
	}
	// A spare init waits here until a pod is created.
	if err := Send(conn, Message{Type: MsgPrepared, IDMapped: p.idMapped, Error: p.idMapErr}); err != nil {
		return 1
	}
	if _, err := Recv(conn, &msg); err != nil || msg.Type != MsgConfig || msg.Config == nil {
		fmt.Fprintf(os.Stderr, "stage-init: no config: %v\n", err)
		return 1
	}
	in := &initProc{cfg: msg.Config, listener: p.listener, ctl: p.ctl, ns: ns, reaper: startReaper(), servePaused: make(chan struct{}, 1)}
	in.status.Phase = PhaseStarting
	for _, ac := range in.cfg.Apps {
		in.status.Apps = append(in.status.Apps, AppStatus{Name: ac.Name, State: AppPending})
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "stage-init: %v\n", err)
		in.finish(PhaseFailed, err)
		_ = Send(conn, Message{Type: MsgFailed, Error: err.Error()}) // the daemon may be gone; status.json says it too
		return 1
	}
	if err := in.setup(); err != nil {
		return fail(err)
	}
	var fds []int
	if in.listener != nil {
		fds = append(fds, sysfd(in.listener))
	}
	if err := Send(conn, Message{Type: MsgNamespaces}, fds...); err != nil {
		return fail(fmt.Errorf("daemon: %w", err))
	}
	if _, err := Recv(conn, &msg); err != nil || msg.Type != MsgStart {
		return fail(fmt.Errorf("daemon did not say start: %v %s", err, msg.Error))
	}
	if err := in.startApps(); err != nil {
		return fail(err)
	}
	pids := map[string]int{}
	for _, a := range in.apps {
		pids[a.cfg.Name] = a.pid
	}
	_ = Send(conn, Message{Type: MsgRunning, Pids: pids}) // a daemon killed meanwhile finds the pod from status.json
	go in.serve()
	in.handleSignals()
	go in.compactLater()
	code := in.supervise()
	// The daemon learns here that the pod has ended, without waiting for
	// the kernel to tear its namespaces down; after a compaction (fd 3
	// is gone then) or a restart of the daemon, it waits for the exit.
	_ = Send(conn, Message{Type: MsgEnded}) // see above
	return code
}

// handleSignals stops the pod on SIGTERM (or SIGINT), with the pod's
// grace period.
func (in *initProc) handleSignals() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for range sig {
			in.stop(in.cfg.StopGrace, true)
		}
	}()
}

// prepared is what prepare made.
type prepared struct {
	listener *os.File // the metadata listener; nil on the host's network
	ctl      *net.UnixListener
	// idMapped says that the image store is mounted at LayersDir with
	// the pod's ID mapping; idMapErr says why not, when it was asked.
	idMapped bool
	idMapErr string
}

// prepare makes what does not depend on the pod's config: a private
// mount tree, the apps' system trees and the control socket in the
// runtime directory and, in a network namespace of the pod's own,
// loopback up and the metadata listener. Spare inits do it before there
// is a pod. For a pod in a user namespace (ns), it also mounts the image
// store ID-mapped, if it can.
func prepare(msg *Message, ns *Namespaces) (*prepared, error) {
	run := msg.Dir
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("make mounts private: %w", err)
	}
	ctl, err := listenControl(run)
	if err != nil {
		return nil, err
	}
	p := &prepared{ctl: ctl}
	if msg.Layers != "" {
		if userns := ns.File("user"); userns == nil {
			p.idMapErr = "no user namespace"
		} else if err := mountLayers(msg.Layers, LayersDir(run), userns); err != nil {
			p.idMapErr = err.Error()
		} else {
			p.idMapped = true
		}
	}
	if err := systemTrees(run, msg.IDMap, ns); err != nil {
		return nil, err
	}
	if !msg.OwnNetwork {
		return p, nil
	}
	err = ns.inPodNamespaces(func() error {
		if err := loopbackUp(); err != nil {
			return err
		}
		l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: MetadataPort})
		if err != nil {
			return fmt.Errorf("metadata listener: %w", err)
		}
		defer l.Close()
		p.listener, err = l.File()
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// setup prepares the pod-wide parts: the hostname, the sysctls, the
// apps' log pipes.
func (in *initProc) setup() error {
	if in.cfg.HostNetwork != (in.listener == nil) {
		return errors.New("the init's network namespace is not the one the pod asks for")
	}
	if in.cfg.Hostname != "" || len(in.cfg.Sysctls) > 0 {
		err := in.ns.inPodNamespaces(func() error {
			if in.cfg.Hostname != "" {
				if err := unix.Sethostname([]byte(in.cfg.Hostname)); err != nil {
					return fmt.Errorf("sethostname: %w", err)
				}
			}
			for k, v := range in.cfg.Sysctls {
				// The init's /proc is the host's procfs, but /proc/sys/net
				// and the IPC sysctls show the namespaces of the writer:
				// the pod's.
				file := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
				if err := os.WriteFile(file, []byte(v), 0); err != nil {
					return fmt.Errorf("sysctl %s: %w", k, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, ac := range in.cfg.Apps {
		a := &app{cfg: ac, ended: make(chan struct{})}
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		a.log = newLog(LogPath(in.cfg.Dir, ac.Name), in.cfg.LogMaxBytes)
		a.out = w
		go a.log.copyFrom(r)
		if ac.Interactive {
			master, slave, err := in.openPty()
			if err != nil {
				return fmt.Errorf("app %s: terminal: %w", ac.Name, err)
			}
			if !ac.TTY {
				if err := plainTerminal(master); err != nil {
					return fmt.Errorf("app %s: terminal: %w", ac.Name, err)
				}
			}
			a.term = &terminal{master: master, log: w, done: make(chan struct{})}
			a.slave = slave
			go a.term.relay()
		}
		in.apps = append(in.apps, a)
	}
	return nil
}

// listenControl creates the control socket, mode 0600. The path goes
// through a descriptor of the pod directory, since socket paths are short.
func listenControl(dir string) (*net.UnixListener, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	_ = unix.Unlinkat(dfd, "control", 0) // a leftover of nothing: pods are never restarted in place
	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: fdPath(dfd) + "/control", Net: "unixpacket"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	return l, nil
}

// loopbackUp brings up lo in the pod's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// startApps prepares every app (root, mounts, user, pre-start handlers),
// and only then starts them all: a failing pre-start leaves no app run.
func (in *initProc) startApps() error {
	threads := make([]*appThread, 0, len(in.apps))
	giveUp := func() {
		for _, t := range threads {
			t.start <- false
		}
	}
	for _, a := range in.apps {
		t, err := in.prepare(a)
		if err != nil {
			giveUp()
			err = fmt.Errorf("app %s: %w", a.cfg.Name, err)
			in.update(func(s *Status) { s.app(a.cfg.Name).Error = err.Error() })
			return err
		}
		threads = append(threads, t)
	}
	for _, t := range threads {
		t.start <- true
	}
	var started []*app
	var failed error
	for i, a := range in.apps {
		if err := <-threads[i].started; err != nil {
			in.update(func(s *Status) { s.app(a.cfg.Name).Error = err.Error() })
			if failed == nil {
				failed = err
			}
			continue
		}
		started = append(started, a)
	}
	if failed != nil {
		in.killAll(started)
		return failed
	}
	now := time.Now().UTC()
	in.update(func(s *Status) {
		for _, a := range in.apps {
			as := s.app(a.cfg.Name)
			as.State, as.Pid, as.StartedAt = AppRunning, a.pid, now
		}
		if s.Phase == PhaseStarting {
			s.Phase = PhaseRunning
		}
	})
	return nil
}

// killAll kills started apps after a failed start and waits for them.
func (in *initProc) killAll(started []*app) {
	_ = unix.Kill(-1, unix.SIGKILL) // every process of the pod but the init
	for _, a := range started {
		in.wait(a)
	}
}

// supervise waits for the apps to end, as the stop policy says, and
// returns the init's exit status.
func (in *initProc) supervise() int {
	var wg sync.WaitGroup
	for _, a := range in.apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := in.wait(a)
			if st.Code != 0 && in.cfg.StopOnFailure {
				in.stop(in.cfg.StopGrace, false)
			}
		}()
	}
	wg.Wait()
	in.mu.Lock()
	phase := PhaseExited
	if in.stopped {
		phase = PhaseStopped
	}
	in.mu.Unlock()
	in.finish(phase, nil)
	in.drainRequests()
	return 0
}

// drainRequests waits, a while at most, for the control requests in
// flight to answer: an entered command, killed with the rest of the pod
// or ended just before, has its exit status told before the init exits
// and the connection with it.
func (in *initProc) drainRequests() {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		in.mu.Lock()
		busy := in.busy
		in.mu.Unlock()
		if busy == 0 {
			return
		}
	}
}

// finish records the final phase and ends every process left in the pod.
func (in *initProc) finish(phase string, err error) {
	in.update(func(s *Status) {
		s.Phase = phase
		if err != nil {
			s.Error = err.Error()
		}
	})
	in.flush()
	_ = unix.Kill(-1, unix.SIGKILL) // leftovers (daemons of apps, entered commands); the kernel would do it too
}

// stop sends SIGTERM to each running app and, after grace, SIGKILL to
// those still running. Post-stop handlers run as each app exits.
// requested says the pod is stopped from outside (it ends "stopped");
// otherwise it stops itself (StopOnFailure) and ends "exited".
func (in *initProc) stop(grace time.Duration, requested bool) {
	in.mu.Lock()
	if in.compacting {
		in.pendingStop = &grace
		in.mu.Unlock()
		return
	}
	in.stopped = in.stopped || requested
	if in.stopping {
		in.mu.Unlock()
		return
	}
	in.stopping = true
	in.mu.Unlock()
	in.update(func(s *Status) {
		if !s.Ended() {
			s.Phase = PhaseStopping
		}
	})
	in.signalApps(unix.SIGTERM)
	time.AfterFunc(grace, func() { in.signalApps(unix.SIGKILL) })
}

// signalApps signals every app still running, with its session.
func (in *initProc) signalApps(sig unix.Signal) {
	for _, a := range in.apps {
		a.mu.Lock()
		if a.pid > 0 && !a.exited {
			_ = unix.Kill(-a.pid, sig) // its session; an app that left it is killed when the pod ends
			_ = unix.Kill(a.pid, sig)
		}
		a.mu.Unlock()
	}
}

func (s *Status) app(name string) *AppStatus {
	for i := range s.Apps {
		if s.Apps[i].Name == name {
			return &s.Apps[i]
		}
	}
	s.Apps = append(s.Apps, AppStatus{Name: name})
	return &s.Apps[len(s.Apps)-1]
}

var errNoApp = errors.New("no such app in the pod")

// appOOMScoreAdj is the oom_score_adj of the pod's processes unless
// os/linux/oom-score-adj says otherwise: the one the init started with
// (what it inherited from the daemon).
var appOOMScoreAdj int

// protectFromOOMKiller makes the init the OOM killer's last choice
// (oom_score_adj -1000: never): it is in the pod's control group, and a
// pod at its memory limit must lose the app that outgrew it, not the
// init that supervises every app and reports their exits. Best effort:
// an init without CAP_SYS_RESOURCE keeps what it has.
func protectFromOOMKiller() {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return
	}
	if appOOMScoreAdj, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
		appOOMScoreAdj = 0
		return
	}
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)
}
