package pod

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/cgroup"
	"github.com/kurmaos/kurma/containers/stage"
)

// podInit is a started in-pod init, prepared (see package stage) and
// waiting for its pod's config.
type podInit struct {
	cmd   *exec.Cmd
	conn  *net.UnixConn
	pid   int
	start uint64        // start time (see startTime)
	done  chan struct{} // closed when it has exited
	err   error         // cmd.Wait's result, once done
	// run is its runtime directory (stage.log in it); cg its cgroup
	// (cgroup v2; nil for v1, where the pod's groups get it at claim).
	run string
	cg  *cgroup.Group
}

// spawnInit starts an init in new namespaces (the network one unless
// hostNetwork, the UTS one unless hostUTS), in group cg with cgroup v2,
// its stderr to run/stage.log, and waits until it is prepared.
func (m *Manager) spawnInit(ctx context.Context, run string, cg *cgroup.Group, hostNetwork, hostUTS bool) (*podInit, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	parent, child := os.NewFile(uintptr(fds[0]), "stage"), os.NewFile(uintptr(fds[1]), "stage")
	defer child.Close()
	fc, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		return nil, err
	}
	conn := fc.(*net.UnixConn)
	fail := func(err error) (*podInit, error) {
		conn.Close()
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(run, "stage.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	defer logf.Close()
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC)
	if !hostUTS {
		flags |= unix.CLONE_NEWUTS
	}
	if !hostNetwork {
		flags |= unix.CLONE_NEWNET
	}
	sys := &syscall.SysProcAttr{Cloneflags: flags, Setsid: true}
	if cg != nil {
		cgfd, err := cg.Open()
		if err != nil {
			return fail(err)
		}
		if cgfd != nil {
			defer cgfd.Close()
			sys.UseCgroupFD, sys.CgroupFD = true, int(cgfd.Fd())
		}
	}
	cmd := &exec.Cmd{
		Path:        m.opts.StageBinary,
		Args:        []string{"kurma", stage.Verb},
		Env:         []string{"GOMAXPROCS=1"},
		Dir:         "/",
		Stdout:      logf,
		Stderr:      logf,
		ExtraFiles:  []*os.File{child},
		SysProcAttr: sys,
	}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("start the pod's init (%s): %w", m.opts.StageBinary, err))
	}
	in := &podInit{cmd: cmd, conn: conn, pid: cmd.Process.Pid, done: make(chan struct{}), run: run, cg: cg}
	go func() {
		in.err = cmd.Wait()
		close(in.done)
	}()
	in.start, err = startTime(in.pid)
	if err == nil {
		err = in.prepare(ctx, !hostNetwork)
	}
	if err != nil {
		in.kill()
		return nil, err
	}
	return in, nil
}

// prepare runs the first exchange of the start protocol.
func (in *podInit) prepare(ctx context.Context, ownNetwork bool) error {
	stop := context.AfterFunc(ctx, func() { in.conn.Close() })
	defer stop()
	if err := stage.Send(in.conn, stage.Message{Type: stage.MsgPrepare, OwnNetwork: ownNetwork, Dir: in.run}); err != nil {
		return fmt.Errorf("pod's init: %w", err)
	}
	var msg stage.Message
	if _, err := stage.Recv(in.conn, &msg); err != nil {
		return fmt.Errorf("pod's init: %w", err)
	}
	if msg.Type != stage.MsgPrepared {
		return fmt.Errorf("pod's init: %s %s", msg.Type, msg.Error)
	}
	return nil
}

// kill ends an init that has no pod and waits for it.
func (in *podInit) kill() {
	in.conn.Close()
	_ = in.cmd.Process.Kill() // it may have ended already
	<-in.done
}

// Spare inits: the manager keeps Options.Spares inits started and
// prepared ahead (in their namespaces, loopback up, metadata listener
// ready), each in a cgroup of its own (kurma/spare-ID with cgroup v2),
// with a runtime directory RUN/.spare-ID. Create claims one for a pod in
// the default namespaces: the directory is renamed to the pod's, the
// init moves into the pod's cgroup, and the start protocol goes on with
// the config. Then a new
// spare is started in the background. A pod start saves the init's
// process start and setup that way (see docs/pods.md, Performance).

const sparePrefix = ".spare-"

// takeSpare returns a prepared spare init, or nil.
func (m *Manager) takeSpare() *podInit {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.spares) > 0 {
		in := m.spares[0]
		m.spares = m.spares[1:]
		select {
		case <-in.done:
			m.bg.Add(1)
			go func() {
				defer m.bg.Done()
				m.dropSpare(in)
			}()
			continue
		default:
		}
		m.refillLocked()
		return in
	}
	m.refillLocked()
	return nil
}

// refillLocked starts spares in the background up to Options.Spares.
// The caller holds m.mu.
func (m *Manager) refillLocked() {
	for !m.closed && len(m.spares)+m.spawning < m.opts.Spares && m.spareErr == nil {
		m.spawning++
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			in, err := m.newSpare()
			m.mu.Lock()
			defer m.mu.Unlock()
			m.spawning--
			switch {
			case err != nil:
				// Not again: a stage binary that cannot start would
				// spin. Pods start cold from now on.
				m.spareErr = err
				m.opts.Logf("pod manager: spare init: %v; pods start without one", err)
			case m.closed:
				m.bg.Add(1)
				go func() {
					defer m.bg.Done()
					m.dropSpare(in)
				}()
			default:
				m.spares = append(m.spares, in)
			}
		}()
	}
}

func (m *Manager) newSpare() (*podInit, error) {
	id := newUUID()[:13]
	run := filepath.Join(m.opts.RunDir, sparePrefix+id)
	if err := os.Mkdir(run, 0o700); err != nil {
		return nil, err
	}
	var cg *cgroup.Group
	if m.cg.Version == cgroup.V2 {
		var err error
		if cg, err = m.cg.Create("spare-" + id); err != nil {
			os.RemoveAll(run)
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, err := m.spawnInit(ctx, run, cg, false, false)
	if err != nil {
		if cg != nil {
			_ = cg.Remove(ctx) // empty: its init is gone
		}
		os.RemoveAll(run)
		return nil, err
	}
	return in, nil
}

// dropSpare kills a spare and removes its directory and cgroup.
func (m *Manager) dropSpare(in *podInit) {
	in.kill()
	if in.cg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := in.cg.Kill(ctx); err == nil {
			_ = in.cg.Remove(ctx) // found again and removed by the next Open if it fails
		}
		cancel()
	}
	_ = os.RemoveAll(in.run) // likewise
}

// claim makes a spare the init of pod p: its runtime directory takes the
// pod's name and, with cgroup v2, it moves from its own group to the
// pod's, which the caller made (cgroup v2 groups cannot be renamed). It
// has started nothing yet, so nothing is left behind.
func (p *Pod) claim(in *podInit) error {
	if err := os.Rename(in.run, p.run); err != nil {
		return err
	}
	in.run = p.run
	if in.cg != nil {
		if err := p.cg.Add(in.pid); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := in.cg.Remove(ctx); err != nil {
			return err
		}
		in.cg = p.cg
	}
	return nil
}

// cleanSpares removes what spares of a previous daemon left: their
// runtime directories and cgroups (their inits gave up when that daemon
// died, or are killed here).
func (m *Manager) cleanSpares(ctx context.Context) error {
	dirs, _ := filepath.Glob(filepath.Join(m.opts.RunDir, sparePrefix+"*"))
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("pod manager: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, root := range m.cg.Roots {
		groups, _ := filepath.Glob(filepath.Join(root, m.cg.Parent, "spare-*"))
		for _, g := range groups {
			seen[filepath.Base(g)] = true
		}
	}
	for name := range seen {
		g := m.cg.Group(name)
		if err := g.Kill(ctx); err != nil {
			return err
		}
		if err := g.Remove(ctx); err != nil {
			return err
		}
	}
	return nil
}

// closeSpares drops the spares and waits for the background work.
func (m *Manager) closeSpares() {
	m.mu.Lock()
	spares := m.spares
	m.spares = nil
	m.mu.Unlock()
	for _, in := range spares {
		m.dropSpare(in)
	}
	m.bg.Wait()
}
