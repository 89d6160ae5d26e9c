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
	// uuid is its pod's UUID, which names its runtime directory and its
	// cgroup, both made before it started.
	uuid string
}

// spawnInit starts the init of pod uuid in new namespaces (the network
// one unless hostNetwork, the UTS one unless hostUTS) and in the pod's
// cgroup, which exist with its runtime directory, its stderr to
// RUN/stage.log, and waits until it is prepared.
func (m *Manager) spawnInit(ctx context.Context, uuid string, hostNetwork, hostUTS, hostIPC bool) (*podInit, error) {
	run, cg := m.runDir(uuid), m.cg.Group(uuid)
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
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID)
	if !hostIPC {
		flags |= unix.CLONE_NEWIPC
	}
	if !hostUTS {
		flags |= unix.CLONE_NEWUTS
	}
	if !hostNetwork {
		flags |= unix.CLONE_NEWNET
	}
	sys := &syscall.SysProcAttr{Cloneflags: flags, Setsid: true}
	// With cgroup v2 the kernel puts the init in the pod's group as it
	// clones it; moving a process later costs milliseconds (an RCU grace
	// period), and v1 has no other way.
	cgfd, err := cg.Open()
	if err != nil {
		return fail(err)
	}
	if cgfd != nil {
		defer cgfd.Close()
		sys.UseCgroupFD, sys.CgroupFD = true, int(cgfd.Fd())
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
	in := &podInit{cmd: cmd, conn: conn, pid: cmd.Process.Pid, done: make(chan struct{}), uuid: uuid}
	go func() {
		in.err = cmd.Wait()
		close(in.done)
	}()
	in.start, err = startTime(in.pid)
	if err == nil && cgfd == nil {
		// cgroup v1: the init waits for "prepare", so nothing of the pod
		// runs outside the groups.
		err = cg.Add(in.pid)
	}
	if err == nil {
		err = in.prepare(ctx, run, !hostNetwork)
	}
	if err != nil {
		in.kill()
		return nil, err
	}
	return in, nil
}

// prepare runs the first exchange of the start protocol.
func (in *podInit) prepare(ctx context.Context, run string, ownNetwork bool) error {
	stop := context.AfterFunc(ctx, func() { in.conn.Close() })
	defer stop()
	if err := stage.Send(in.conn, stage.Message{Type: stage.MsgPrepare, OwnNetwork: ownNetwork, Dir: run}); err != nil {
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
// prepared ahead (in their namespaces, with the pod's /dev, /proc and
// /sys mounted, loopback up and the metadata listener ready), each with
// the UUID of the pod it will run, its runtime directory and its cgroup.
// Create takes one for a pod in the default namespaces and goes on with
// the config; a new spare starts in the background once the pod runs. A spare has no
// pod.json: if the daemon dies, the spare gives up when fd 3 closes and
// the next Open drops its directory and cgroup as those of a pod that
// never started.

// takeSpare returns a prepared spare init, or nil. The caller refills.
func (m *Manager) takeSpare() *podInit {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.spares) > 0 {
		in := m.spares[0]
		m.spares = m.spares[1:]
		select {
		case <-in.done:
			m.dropSpareLaterLocked(in)
			continue
		default:
		}
		return in
	}
	return nil
}

// SparesReady is how many spare inits are ready for pods to come.
func (m *Manager) SparesReady() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.spares)
}

// refill starts spares in the background up to Options.Spares. Create
// calls it once its pod has started, so that starting a spare does not
// compete with the pod for the CPU.
func (m *Manager) refill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refillLocked()
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
				m.dropSpareLaterLocked(in)
			default:
				m.spares = append(m.spares, in)
			}
		}()
	}
}

func (m *Manager) newSpare() (*podInit, error) {
	uuid := newUUID()
	run := m.runDir(uuid)
	if err := os.Mkdir(run, 0o700); err != nil {
		return nil, err
	}
	if _, err := m.cg.Create(uuid); err != nil {
		os.RemoveAll(run)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, err := m.spawnInit(ctx, uuid, false, false, false)
	if err != nil {
		_ = m.cg.Group(uuid).Remove(ctx) // empty: its init is gone
		os.RemoveAll(run)
		return nil, err
	}
	return in, nil
}

// dropSpare kills a spare and removes its directory and cgroup.
func (m *Manager) dropSpare(in *podInit) {
	in.kill()
	g := m.cg.Group(in.uuid)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := g.Kill(ctx); err == nil {
		_ = g.Remove(ctx) // found and removed by the next Open if it fails
	}
	cancel()
	_ = os.RemoveAll(m.runDir(in.uuid)) // likewise
}

// dropSpareLater drops a spare (nil: nothing) in the background.
func (m *Manager) dropSpareLater(in *podInit) {
	if in == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropSpareLaterLocked(in)
}

func (m *Manager) dropSpareLaterLocked(in *podInit) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		m.dropSpare(in)
	}()
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
