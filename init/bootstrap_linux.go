package boot

import (
	"context"
	"time"

	"github.com/kurmaos/kurma/bootstrap"
	"github.com/kurmaos/kurma/config"
)

// bootstrapFiles is where the bootstrap writes containers' files before
// binding them in (root only).
const bootstrapFiles = "/run/kurma/bootstrap"

// bootstrapping is the bootstrap's supervision of the services, for the
// life of the machine.
type bootstrapping struct {
	b      *bootstrap.Bootstrap
	rt     *bootstrap.APIRuntime
	cancel context.CancelFunc
}

// bootstrap runs the run-to-completion bootstrap containers in order,
// then starts the services (the console first) and keeps them running.
// An essential container that fails is the phase's failure, naming it;
// the console service is started all the same, so that the operator can
// log in and look (kurma logs NAME).
func (m *Machine) bootstrap(ctx context.Context) error {
	plan, errs := bootstrap.NewPlan(m.cfg)
	for _, err := range errs {
		m.log.Errorf("%v", err)
	}
	if len(plan.RunToCompletion)+len(plan.Services) == 0 {
		m.log.Infof("bootstrap: nothing to run")
		return nil
	}
	rt := bootstrap.DialAPI(m.cfg.API.Socket)
	b := bootstrap.New(bootstrap.Options{Runtime: rt, FilesDir: bootstrapFiles, Logf: m.log.Infof, Warnf: m.log.Warnf})
	// The services outlive the phase: their supervision ends at shutdown.
	sctx, cancel := context.WithCancel(context.Background())
	m.boots = &bootstrapping{b: b, rt: rt, cancel: cancel}
	m.shutdownHooks = append([]func(){m.stopBootstrap}, m.shutdownHooks...)
	if err := b.RunToCompletion(ctx, plan.RunToCompletion); err != nil {
		var console []config.Container
		for _, c := range plan.Services {
			if c.Name == bootstrap.ConsoleName {
				console = append(console, c)
			}
		}
		_ = b.StartServices(sctx, console) // the console is never essential; its failures are logged
		return err
	}
	return b.StartServices(sctx, plan.Services)
}

// stopBootstrap is the first shutdown hook: no service may be started
// again while the runtime stops the pods.
func (m *Machine) stopBootstrap() {
	bs := m.boots
	if bs == nil {
		return
	}
	bs.cancel()
	done := make(chan struct{})
	go func() {
		bs.b.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		m.log.Warnf("shutdown: the bootstrap's supervision did not stop in time")
	}
	bs.rt.Close()
}
