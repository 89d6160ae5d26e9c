package bootstrap

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/config"
)

// StartServices starts each service, in order, and supervises it until
// ctx ends: when its pod ends, the restart policy says whether it starts
// again (always; on-failure: unless every app exited 0; never), after a
// wait that starts at restart.backoff and doubles at each restart up to
// restart.max_backoff, and starts over at backoff after a run that
// lasted longer than max_backoff (from the start of its apps to their
// end: the time the runtime takes to make the pod does not count). It returns once each service has been
// started once; the first essential service that could not be started
// is its *ContainerError (it is still tried again, as any service).
func (b *Bootstrap) StartServices(ctx context.Context, cs []config.Container) error {
	var first error
	for i := range cs {
		c := cs[i]
		b.mu.Lock()
		st := &ServiceState{Name: c.Name}
		b.services[c.Name] = st
		b.mu.Unlock()
		started := make(chan error, 1)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.supervise(ctx, &c, st, started)
		}()
		err := <-started
		switch {
		case err == nil:
			b.opts.Logf("bootstrap: service %s started", c.Name)
		case c.Essential && first == nil:
			first = &ContainerError{Name: c.Name, Err: err}
		default:
			b.opts.Warnf("bootstrap: service %s: %v", c.Name, err)
		}
	}
	return first
}

// Wait waits until every supervision has stopped (its ctx ended).
func (b *Bootstrap) Wait() { b.wg.Wait() }

// Services reports the state of each service.
func (b *Bootstrap) Services() []ServiceState {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ServiceState
	for _, name := range slices.Sorted(maps.Keys(b.services)) {
		out = append(out, *b.services[name])
	}
	return out
}

func (b *Bootstrap) supervise(ctx context.Context, c *config.Container, st *ServiceState, started chan<- error) {
	wait := c.Restart.Backoff
	for run := 0; ; run++ {
		begin := b.opts.Clock.Now()
		p, err := b.start(ctx, c, run > 0)
		if started != nil {
			started <- err
			started = nil
		}
		if err == nil {
			b.setState(st, func(st *ServiceState) { st.Running = true })
			p, err = b.wait(ctx, p.Uuid)
		}
		if ctx.Err() != nil {
			return // shutdown: the runtime stops the pods
		}
		if err == nil {
			err = failure(p)
		}
		why := "exited 0"
		switch {
		case errors.Is(err, ErrNotFound):
			why = "its pod was removed"
		case err != nil:
			why = err.Error()
		}
		if ran(p, begin, b.opts.Clock.Now()) > c.Restart.MaxBackoff {
			wait = c.Restart.Backoff // it ran well for a while
		}
		policy := c.RestartPolicyOf()
		if policy == config.RestartNever || policy == config.RestartOnFailure && err == nil {
			b.setState(st, func(st *ServiceState) { st.Running, st.Last, st.GivenUp = false, why, true })
			b.opts.Logf("bootstrap: service %s ended (%s); not started again (restart policy %s)", c.Name, why, policy)
			return
		}
		b.setState(st, func(st *ServiceState) { st.Running, st.Last, st.Restarts = false, why, st.Restarts+1 })
		b.opts.Warnf("bootstrap: service %s ended (%s); restart %d in %s", c.Name, why, run+1, wait)
		if b.opts.Clock.Sleep(ctx, wait) != nil {
			return
		}
		wait = min(2*wait, c.Restart.MaxBackoff)
	}
}

// ran is how long a pod's apps ran: from its start to its end as the
// runtime saw them (the time it took to make the pod does not count),
// else from begin to now.
func ran(p *kurmav1.Pod, begin, now time.Time) time.Duration {
	if p != nil && p.StartedAt != nil && p.FinishedAt != nil {
		return p.FinishedAt.AsTime().Sub(p.StartedAt.AsTime())
	}
	return now.Sub(begin)
}

func (b *Bootstrap) setState(st *ServiceState, f func(*ServiceState)) {
	b.mu.Lock()
	f(st)
	b.mu.Unlock()
}
