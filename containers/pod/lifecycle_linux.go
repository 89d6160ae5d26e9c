package pod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/stage"
)

// dial connects to the pod's control socket. The path goes through a
// descriptor of the pod's directory: socket paths are limited to 108
// bytes and pod directories may be deeper.
func (p *Pod) dial() (*net.UnixConn, error) {
	dfd, err := unix.Open(p.run, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.uuid, err)
	}
	defer unix.Close(dfd)
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: fmt.Sprintf("/proc/self/fd/%d/control", dfd), Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("pod %s: control socket: %w", p.uuid, err)
	}
	return c, nil
}

// connect connects to the init for one request; the connection closes
// when ctx ends or done is called.
func (p *Pod) connect(ctx context.Context) (c *net.UnixConn, done func(), err error) {
	c, err = p.dial()
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	return c, func() {
		stop()
		c.Close()
	}, nil
}

// request sends one request to the init and reads the first reply.
func (p *Pod) request(ctx context.Context, req stage.Request) (stage.Reply, error) {
	c, done, err := p.connect(ctx)
	if err != nil {
		return stage.Reply{}, err
	}
	defer done()
	if err := stage.Send(c, req); err != nil {
		return stage.Reply{}, err
	}
	var rep stage.Reply
	files, err := stage.Recv(c, &rep)
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		return rep, err
	}
	if rep.Error != "" {
		return rep, errors.New(rep.Error)
	}
	return rep, nil
}

// Stop stops a running pod: SIGTERM to each app, SIGKILL to those still
// running after grace (0: the manager's default), post-stop handlers as
// each app exits. It returns when the pod has stopped. Stopping a pod
// that has ended is a *TransitionError. If the pod's init does not end
// in time (grace and 10 s), every process of the pod is killed through
// its cgroup.
func (p *Pod) Stop(ctx context.Context, grace time.Duration) error {
	if grace == 0 {
		grace = p.m.opts.StopGrace
	}
	p.mu.Lock()
	switch p.rec.State {
	case Running:
		if err := p.setState(Stopping, ""); err != nil {
			p.mu.Unlock()
			return err
		}
	case Stopping:
		// Asked again, maybe with a shorter grace.
	default:
		err := &TransitionError{From: p.rec.State, To: Stopping}
		p.mu.Unlock()
		return err
	}
	done := p.done
	p.mu.Unlock()

	_, err := p.request(ctx, stage.Request{Op: stage.OpStop, Grace: grace})
	if err != nil {
		select {
		case <-done:
			return nil // it ended meanwhile
		default:
		}
		p.m.opts.Logf("pod %s: stop through the init: %v; killing it through its cgroup", p.uuid, err)
		return p.kill(ctx)
	}
	t := time.NewTimer(grace + 10*time.Second)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		p.m.opts.Logf("pod %s: its init did not end %v after SIGKILL; killing it through its cgroup", p.uuid, 10*time.Second)
		return p.kill(ctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// kill kills every process of the pod through its cgroup and waits for
// the pod to be seen ended.
func (p *Pod) kill(ctx context.Context) error {
	if err := p.cg.Kill(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Remove removes a pod: a running pod is stopped first (with the default
// grace); then every process left in its cgroup is killed, the cgroup,
// the network and the pod's directory (volumes of kind empty included)
// are removed. No mount of the pod is left: they all lived in the pod's
// own mount namespaces.
func (m *Manager) Remove(ctx context.Context, ref string) error {
	p, err := m.Get(ref)
	if err != nil {
		return err
	}
	p.mu.Lock()
	state := p.rec.State
	p.mu.Unlock()
	if state == Running || state == Stopping {
		if err := p.Stop(ctx, 0); err != nil {
			var te *TransitionError
			if !errors.As(err, &te) {
				return err
			}
		}
	}
	return p.remove(ctx)
}

func (p *Pod) remove(ctx context.Context) error {
	p.mu.Lock()
	if p.rec.State == Preparing {
		p.mu.Unlock()
		return &TransitionError{From: Preparing, To: Removing}
	}
	if p.rec.State != Removing {
		if err := p.setState(Removing, ""); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	token, hostNet, idmap := p.rec.Token, p.rec.HostNetwork, p.rec.UserNS
	p.mu.Unlock()

	p.m.md.Unregister(token)
	if err := p.cg.Kill(ctx); err != nil {
		return fmt.Errorf("remove pod %s: %w", p.uuid, err)
	}
	if err := p.cg.Remove(ctx); err != nil {
		return fmt.Errorf("remove pod %s: %w", p.uuid, err)
	}
	if n := p.m.opts.Network; n != nil && !hostNet {
		if err := n.Teardown(ctx, NetNS{PodUUID: p.uuid}); err != nil {
			return fmt.Errorf("remove pod %s: network: %w", p.uuid, err)
		}
	}
	if err := p.removeFiles(); err != nil {
		return err
	}
	p.mu.Lock()
	err := p.setState(Removed, "")
	p.mu.Unlock()
	p.m.mu.Lock()
	delete(p.m.pods, p.uuid)
	p.m.ids.release(idmap) // its files are gone
	p.m.mu.Unlock()
	return err
}
