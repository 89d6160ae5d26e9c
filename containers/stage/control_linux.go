package stage

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// serve answers requests on the control socket.
func (in *initProc) serve() {
	for {
		c, err := in.ctl.AcceptUnix()
		in.mu.Lock()
		if err != nil {
			paused := in.compacting
			in.mu.Unlock()
			if paused {
				in.servePaused <- struct{}{}
			}
			return
		}
		in.busy++
		in.mu.Unlock()
		go in.handle(c)
	}
}

func (in *initProc) handle(c *net.UnixConn) {
	defer func() {
		in.mu.Lock()
		in.busy--
		in.mu.Unlock()
	}()
	defer c.Close()
	var req Request
	files, err := Recv(c, &req)
	defer closeAll(files)
	if err != nil {
		return
	}
	switch req.Op {
	case OpStop:
		in.stop(req.Grace, true)
		_ = Send(c, Reply{}) // the caller may have given up waiting
	case OpListener:
		if in.listener == nil {
			_ = Send(c, Reply{Error: "the pod uses the host's network"})
			return
		}
		_ = Send(c, Reply{}, sysfd(in.listener)) // the caller retries on its next attach
	case OpEnter:
		if err := in.enter(c, req.Enter, files); err != nil {
			_ = Send(c, Reply{Error: err.Error()}) // nothing more to tell a caller that is gone
		}
	case OpAttach:
		if err := in.attach(c, req.App, files); err != nil {
			_ = Send(c, Reply{Error: err.Error()}) // as above
		}
	default:
		_ = Send(c, Reply{Error: fmt.Sprintf("unknown operation %q", req.Op)})
	}
}

// enter runs a command in a running app and reports its pid, then its
// exit status, on c. files are the command's stdin, stdout and stderr
// (without a TTY).
func (in *initProc) enter(c *net.UnixConn, req *EnterRequest, files []*os.File) error {
	if req == nil || len(req.Args) == 0 {
		return fmt.Errorf("enter: no command")
	}
	var a *app
	for _, x := range in.apps {
		if x.cfg.Name == req.App {
			a = x
		}
	}
	if a == nil {
		return fmt.Errorf("enter %s: %w", req.App, errNoApp)
	}
	a.mu.Lock()
	exited := a.exited || a.pid == 0
	a.mu.Unlock()
	if exited {
		return fmt.Errorf("enter %s: the app is not running", req.App)
	}
	stdio := files
	var master *os.File
	if req.TTY {
		m, slave, err := in.openPty()
		if err != nil {
			return err
		}
		defer m.Close()
		// Sized before the command starts, which may ask at once.
		if req.Rows > 0 && req.Cols > 0 {
			_ = unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: req.Rows, Col: req.Cols}) // a size the terminal refuses keeps its default
		}
		master = m
		stdio = []*os.File{slave}
	} else if len(files) != 3 {
		return fmt.Errorf("enter: want 3 descriptors (stdin, stdout, stderr), got %d", len(files))
	}
	fds := make([]uintptr, 0, 3)
	for i := range 3 {
		fds = append(fds, stdio[min(i, len(stdio)-1)].Fd())
	}
	env := append(append([]string{}, a.cfg.Env...), req.Env...)
	var pid int
	var exit <-chan ExitStatus
	err := a.inApp(func() error {
		rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		exe, err := lookPath(rootfd, req.Args[0], env)
		unix.Close(rootfd)
		if err != nil {
			return err
		}
		pid, exit, err = in.reaper.spawn(procSpec{path: exe, argv: req.Args, env: env, dir: a.dir, cred: a.cred, files: fds, tty: req.TTY, iso: &a.cfg.Isolation, cgroup: &a.cfg.Cgroup, ns: in.ns.joins()})
		return err
	})
	// Only the command holds its terminal or pipes now, so that the
	// other side sees them close when it is done.
	if req.TTY {
		closeAll(stdio)
	}
	closeAll(files)
	if err != nil {
		return fmt.Errorf("enter %s: %w", req.App, err)
	}
	var pass []int
	if master != nil {
		pass = append(pass, int(master.Fd()))
	}
	if err := Send(c, Reply{Pid: pid}, pass...); err != nil {
		return nil // the caller is gone; the command runs on
	}
	st := <-exit
	_ = Send(c, Reply{Exit: &st}) // the caller is gone if this fails
	return nil
}

// openPty allocates a terminal in the pod's devpts, so that it is the
// one the app sees at /dev/pts/N.
func (in *initProc) openPty() (master, slave *os.File, err error) {
	fd, err := unix.Open(in.cfg.RunDir+"/devpts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	sfd := int(r)
	if errno != 0 {
		err = errno
		unix.Close(fd)
		return nil, nil, fmt.Errorf("open pty peer: %w", err)
	}
	return os.NewFile(uintptr(fd), "ptmx"), os.NewFile(uintptr(sfd), "pty"), nil
}
