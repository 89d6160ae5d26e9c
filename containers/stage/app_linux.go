package stage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// app is one app of the pod, as the init runs it.
type app struct {
	cfg   AppConfig
	mntns *os.File // the app's mount namespace, for handlers and enter
	path  string   // the executable, resolved in the app's root
	cred  *syscall.Credential
	dir   string
	log   *logFile
	out   *os.File // write end of the log pipe, given to every process
	pid   int
	exit  <-chan ExitStatus
	// term is an interactive app's terminal; nil: its stdin is
	// /dev/null, its output the log pipe.
	term  *terminal
	slave *os.File // the terminal's app end, until the app starts
	// ended is closed when the app's exit is recorded (status).
	ended chan struct{}

	mu     sync.Mutex
	exited bool
	status ExitStatus
}

// onThread runs fn on a new OS thread that is thrown away afterwards:
// namespace and root changes made by fn never reach another goroutine.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		errc <- fn()
	}()
	return <-errc
}

// inApp runs fn on a fresh thread that has joined the app's mount
// namespace, whose root is the app's root.
func (a *app) inApp(fn func() error) error {
	return onThread(func() error {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare fs: %w", err)
		}
		if err := unix.Setns(int(a.mntns.Fd()), unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("join mount namespace of app %s: %w", a.cfg.Name, err)
		}
		return fn()
	})
}

// appThread is an app's own OS thread: it prepares the app (mount
// namespace, root, user, pre-start handlers), then waits to be told to
// start it, and execs it from there.
type appThread struct {
	prepared chan error
	start    chan bool // true: start the app; false: give up
	started  chan error
}

// prepare starts the app's thread and waits until the app is prepared.
func (in *initProc) prepare(a *app) (*appThread, error) {
	t := &appThread{prepared: make(chan error, 1), start: make(chan bool, 1), started: make(chan error, 1)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		err := in.prepareLocked(a)
		t.prepared <- err
		if err != nil || !<-t.start {
			return
		}
		t.started <- in.spawnApp(a)
	}()
	return t, <-t.prepared
}

func (in *initProc) prepareLocked(a *app) error {
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	ns, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return err
	}
	a.mntns = ns
	if err := in.mountRoot(a); err != nil {
		return err
	}
	if err := a.resolve(in.cfg.UserNS); err != nil {
		return err
	}
	for _, h := range a.cfg.PreStart {
		if err := in.runHandler(a, "pre-start", h); err != nil {
			return err
		}
	}
	return nil
}

// mountRoot mounts the app's root filesystem and everything in it, then
// pivot_roots the calling thread into it and detaches the old root.
func (in *initProc) mountRoot(a *app) error {
	root := RootDir(in.cfg.RunDir, a.cfg.Name)
	data := "lowerdir=" + strings.Join(a.cfg.Lowers, ":") + ",upperdir=" + UpperDir(in.cfg.Dir, a.cfg.Name) + ",workdir=" + WorkDir(in.cfg.Dir, a.cfg.Name)
	if err := unix.Mount("overlay", root, "overlay", unix.MS_NODEV, data); err != nil {
		return &os.PathError{Op: "mount overlay", Path: root, Err: err}
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootfd)
	for _, m := range a.cfg.Mounts {
		if err := bindInRoot(rootfd, m.Source, m.Target, m.Recursive, m.ReadOnly); err != nil {
			return err
		}
	}
	// /dev, /proc and /sys are the pod's, made once (see systemTrees);
	// a privileged app has the host's devices, and its own /proc and
	// /sys with nothing hidden or read-only.
	if a.cfg.Privileged {
		if err := privilegedTrees(rootfd); err != nil {
			return err
		}
	} else {
		for _, d := range []string{"/dev", "/proc", "/sys"} {
			if err := bindSystemTree(rootfd, in.cfg.RunDir+"/system"+d, d); err != nil {
				return err
			}
		}
	}
	if err := mountCgroups(rootfd, a.cfg.Cgroup.Mounts); err != nil {
		return err
	}
	if a.cfg.APISocket != "" {
		if err := bindInRoot(rootfd, a.cfg.APISocket, APISocketTarget, false, false); err != nil {
			return err
		}
	}
	if a.cfg.ReadOnlyRootFS {
		if err := setReadOnly(rootfd, "/", false); err != nil {
			return err
		}
	}
	if err := unix.Fchdir(rootfd); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// it leaves only the app's tree in this namespace (THREATS.md 22).
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// resolve finds, inside the app's root (the calling thread's), its
// executable, user, group and working directory. In a user namespace
// (idmap), the IDs are the namespace's: files of the root show the
// init, which is outside, the host's IDs of their owners.
func (a *app) resolve(idmap *IDMap) error {
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	r := idResolver{
		open: func(name string) (io.ReadCloser, error) {
			fd, err := openInRoot(rootfd, name, unix.O_RDONLY)
			if err != nil {
				return nil, err
			}
			return os.NewFile(uintptr(fd), name), nil
		},
		owner: func(name string) (int, int, error) {
			fd, err := openInRoot(rootfd, name, unix.O_PATH)
			if err != nil {
				return 0, 0, err
			}
			defer unix.Close(fd)
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				return 0, 0, err
			}
			uid, gid := int(st.Uid), int(st.Gid)
			if idmap != nil {
				var ok, gok bool
				uid, ok = idmap.Inside(uid)
				gid, gok = idmap.Inside(gid)
				if !ok || !gok {
					return 0, 0, fmt.Errorf("owned by %d:%d on the host, outside the pod's user namespace", st.Uid, st.Gid)
				}
			}
			return uid, gid, nil
		},
	}
	uid, err := r.resolve(a.cfg.User, "/etc/passwd", "user")
	if err != nil {
		return err
	}
	gid, err := r.resolve(a.cfg.Group, "/etc/group", "group")
	if err != nil {
		return err
	}
	if idmap != nil {
		for _, id := range append([]int{uid, gid}, a.cfg.SupplementaryGIDs...) {
			if !idmap.Contains(id) {
				return fmt.Errorf("user and groups: %d is outside the pod's user namespace (0 to %d)", id, idmap.Size-1)
			}
		}
	}
	groups := make([]uint32, 0, len(a.cfg.SupplementaryGIDs))
	for _, g := range a.cfg.SupplementaryGIDs {
		groups = append(groups, uint32(g))
	}
	a.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}

	a.dir = a.cfg.WorkingDirectory
	if a.dir == "" {
		a.dir = "/"
	}
	// The directory is checked here, inside the root and without magic
	// links, so that /proc/self/fd/N can never be one (THREATS.md 23).
	fd, err := openInRoot(rootfd, a.dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", a.dir, errors.Unwrap(err))
	}
	unix.Close(fd)
	if len(a.cfg.Exec) == 0 {
		return errors.New("no exec")
	}
	a.path, err = lookPath(rootfd, a.cfg.Exec[0], a.cfg.Env)
	return err
}

// lookPath finds an executable inside the root as execvp(3) would: a name
// with a slash is taken as it is, others are searched in PATH.
func lookPath(rootfd int, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := checkExecutable(rootfd, name); err != nil {
			return "", err
		}
		return name, nil
	}
	p := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			p = v
		}
	}
	for _, d := range strings.Split(p, ":") {
		if d == "" {
			d = "."
		}
		c := path.Join(d, name)
		if !path.IsAbs(c) {
			c = "/" + c
		}
		if checkExecutable(rootfd, c) == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH %s", name, p)
}

func checkExecutable(rootfd int, name string) error {
	fd, err := openInRoot(rootfd, name, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("executable %s: %w", name, errors.Unwrap(err))
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
		return fmt.Errorf("executable %s: not an executable file", name)
	}
	return nil
}

// devNull opens /dev/null of the calling thread's root.
func devNull() (*os.File, error) {
	return os.OpenFile("/dev/null", os.O_RDWR, 0)
}

// runHandler runs an event handler in the app's root (the calling
// thread's) as root, to completion, confined as the app is (its
// capabilities, seccomp filters, no_new_privs, oom_score_adj and
// control groups).
func (in *initProc) runHandler(a *app, event string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("%s handler of app %s: no exec", event, a.cfg.Name)
	}
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	exe, err := lookPath(rootfd, argv[0], a.cfg.Env)
	unix.Close(rootfd)
	if err != nil {
		return fmt.Errorf("%s handler of app %s: %w", event, a.cfg.Name, err)
	}
	null, err := devNull()
	if err != nil {
		return err
	}
	defer null.Close()
	_, ch, err := in.reaper.spawn(procSpec{
		path: exe, argv: argv, env: a.cfg.Env, dir: a.dirOrRoot(),
		cred:  &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
		files: []uintptr{null.Fd(), a.out.Fd(), a.out.Fd()},
		iso:   &a.cfg.Isolation, cgroup: &a.cfg.Cgroup, ns: in.ns.joins(),
	})
	if err != nil {
		return fmt.Errorf("%s handler of app %s: %w", event, a.cfg.Name, err)
	}
	if st := <-ch; st.Code != 0 {
		return fmt.Errorf("%s handler %q of app %s exited with status %d%s", event, strings.Join(argv, " "), a.cfg.Name, st.Code, signalSuffix(st))
	}
	return nil
}

func signalSuffix(st ExitStatus) string {
	if st.Signal != "" {
		return " (" + st.Signal + ")"
	}
	return ""
}

func (a *app) dirOrRoot() string {
	if a.dir == "" {
		return "/"
	}
	return a.dir
}

// spawnApp execs the app from its thread, in its root.
func (in *initProc) spawnApp(a *app) error {
	null, err := devNull()
	if err != nil {
		return err
	}
	defer null.Close()
	files := []uintptr{null.Fd(), a.out.Fd(), a.out.Fd()}
	if a.term != nil {
		files = []uintptr{a.slave.Fd(), a.slave.Fd(), a.slave.Fd()}
	}
	pid, ch, err := in.reaper.spawn(procSpec{
		path: a.path, argv: a.cfg.Exec, env: a.cfg.Env, dir: a.dir, cred: a.cred,
		files: files, tty: a.term != nil,
		iso: &a.cfg.Isolation, cgroup: &a.cfg.Cgroup, ns: in.ns.joins(),
	})
	if a.slave != nil {
		// Only the app holds its terminal now: the relay sees it close.
		a.slave.Close()
		a.slave = nil
	}
	if err != nil {
		return fmt.Errorf("app %s: %w", a.cfg.Name, err)
	}
	a.mu.Lock()
	a.pid, a.exit = pid, ch
	a.mu.Unlock()
	return nil
}

// wait waits for the app to exit, records it and runs the post-stop
// handlers. It reports the exit status.
func (in *initProc) wait(a *app) ExitStatus {
	st := <-a.exit
	a.mu.Lock()
	a.exited, a.status = true, st
	a.mu.Unlock()
	defer close(a.ended)
	oom := st.Signal == unix.SIGKILL.String() && oomKills(a.cfg.Cgroup.OOMEvents) > 0
	in.update(func(s *Status) {
		as := s.app(a.cfg.Name)
		as.State, as.Exit, as.ExitedAt, as.OOMKilled = AppExited, &st, time.Now().UTC(), oom
	})
	in.postStop(a)
	return st
}

// postStop runs the app's post-stop handlers; a failure is recorded in
// the app's status, it does not change how the app ended.
func (in *initProc) postStop(a *app) {
	for _, h := range a.cfg.PostStop {
		err := a.inApp(func() error { return in.runHandler(a, "post-stop", h) })
		if err != nil {
			in.update(func(s *Status) { s.app(a.cfg.Name).Error = err.Error() })
			fmt.Fprintf(a.out, "kurma: %v\n", err)
		}
	}
	if a.term != nil {
		// What the app wrote last is still on its terminal: the relay
		// writes it to the log (and the client) before the log closes.
		select {
		case <-a.term.done:
		case <-time.After(time.Second): // a process it left behind holds the terminal
		}
	}
	a.out.Close()
	// The log has everything the app wrote once the pipe is drained; a
	// process the app left behind may hold it open, so not forever.
	select {
	case <-a.log.done:
	case <-time.After(time.Second):
	}
}
