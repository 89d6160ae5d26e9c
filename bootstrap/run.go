package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/config"
)

// Options configure a Bootstrap.
type Options struct {
	Runtime Runtime
	// FilesDir is where containers' files are written on the host before
	// they are bound into them: FilesDir/NAME/files/PATH.
	FilesDir string
	// Logf and Warnf report progress and problems (the console, in PID 1).
	Logf, Warnf func(format string, args ...any)
	// Clock is the real clock when nil.
	Clock Clock
	// RetryWait bounds the wait between two tries to reach a runtime that
	// does not answer (its daemon restarting): 5 s when 0.
	RetryWait time.Duration
}

// Bootstrap runs the bootstrap containers and supervises the services.
type Bootstrap struct {
	opts Options

	mu       sync.Mutex // guards images and services
	images   map[string]*Image
	services map[string]*ServiceState
	wg       sync.WaitGroup
}

// ServiceState is what became of a service.
type ServiceState struct {
	Name string
	// Restarts counts the times it was started again.
	Restarts int
	// Running is true from a start until the end of that run.
	Running bool
	// Last is how its last run ended, empty while the first runs.
	Last string
	// Given up is true when its policy says it is not started again.
	GivenUp bool
}

// New returns a Bootstrap over a runtime.
func New(opts Options) *Bootstrap {
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Warnf == nil {
		opts.Warnf = opts.Logf
	}
	if opts.RetryWait == 0 {
		opts.RetryWait = 5 * time.Second
	}
	return &Bootstrap{opts: opts, images: map[string]*Image{}, services: map[string]*ServiceState{}}
}

// ContainerError is the failure of an essential container: the boot
// stops.
type ContainerError struct {
	Name string
	Err  error
}

func (e *ContainerError) Error() string {
	return fmt.Sprintf("bootstrap container %s failed: %v", e.Name, e.Err)
}

func (e *ContainerError) Unwrap() error { return e.Err }

// RunToCompletion runs the containers in order, each to its end. A
// container whose restart policy is on-failure is tried again after its
// backoff, doubling, as long as the wait stays within max_backoff. The
// first essential container that fails ends the run with its
// *ContainerError; the others' failures are warnings.
func (b *Bootstrap) RunToCompletion(ctx context.Context, cs []config.Container) error {
	for i := range cs {
		c := &cs[i]
		err := b.runOne(ctx, c)
		switch {
		case err == nil:
		case c.Essential || ctx.Err() != nil:
			return &ContainerError{Name: c.Name, Err: err}
		default:
			b.opts.Warnf("bootstrap: %s failed, boot goes on: %v", c.Name, err)
		}
	}
	return nil
}

func (b *Bootstrap) runOne(ctx context.Context, c *config.Container) error {
	wait := c.Restart.Backoff
	for attempt := 1; ; attempt++ {
		start := b.opts.Clock.Now()
		p, err := b.start(ctx, c, attempt > 1)
		if err == nil {
			p, err = b.follow(ctx, c.Name, p.Uuid)
		}
		if err == nil {
			err = failure(p)
		}
		if err == nil {
			b.opts.Logf("bootstrap: %s done in %d ms", c.Name, b.opts.Clock.Now().Sub(start).Milliseconds())
			return nil
		}
		if c.RestartPolicyOf() != config.RestartOnFailure || wait > c.Restart.MaxBackoff || ctx.Err() != nil {
			return err
		}
		b.opts.Warnf("bootstrap: %s: %v; try %d in %s", c.Name, err, attempt+1, wait)
		if err := b.opts.Clock.Sleep(ctx, wait); err != nil {
			return err
		}
		wait *= 2
	}
}

// follow relays the pod's output to the log until the pod ends, and
// returns its final state.
func (b *Bootstrap) follow(ctx context.Context, name, uuid string) (*kurmav1.Pod, error) {
	if err := b.opts.Runtime.Logs(ctx, uuid, func(line string) { b.opts.Logf("bootstrap: %s: %s", name, line) }); err != nil && ctx.Err() == nil {
		b.opts.Warnf("bootstrap: %s: output: %v", name, err)
	}
	return b.wait(ctx, uuid)
}

// wait waits for the pod's end, across restarts of the runtime.
func (b *Bootstrap) wait(ctx context.Context, uuid string) (*kurmav1.Pod, error) {
	retry := 100 * time.Millisecond
	for {
		p, err := b.opts.Runtime.Wait(ctx, uuid)
		if err == nil || errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			return p, err
		}
		// The runtime does not answer (its daemon restarts): the pod
		// goes on meanwhile, held by its own init.
		if err := b.opts.Clock.Sleep(ctx, retry); err != nil {
			return nil, err
		}
		retry = min(2*retry, b.opts.RetryWait)
	}
}

// start makes the container's pod and starts it: the image resolved (once
// for the life of the Bootstrap), the files written, the manifest made.
// A first start removes a pod of the same name left from before; a
// restart replaces the ended one, and the runtime counts it.
func (b *Bootstrap) start(ctx context.Context, c *config.Container, restart bool) (*kurmav1.Pod, error) {
	img, err := b.image(ctx, c.Image)
	if err != nil {
		return nil, err
	}
	files, err := writeFiles(filepath.Join(b.opts.FilesDir, c.Name, "files"), c.Files)
	if err != nil {
		return nil, err
	}
	pm, err := podManifest(c, img, files)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(pm)
	if err != nil {
		return nil, err
	}
	if !restart {
		if err := b.opts.Runtime.Remove(ctx, c.Name); err != nil {
			return nil, fmt.Errorf("remove the pod left from before: %w", err)
		}
	}
	return b.opts.Runtime.Create(ctx, c.Name, data, restart)
}

func (b *Bootstrap) image(ctx context.Context, ref string) (*Image, error) {
	b.mu.Lock()
	img, ok := b.images[ref]
	b.mu.Unlock()
	if ok {
		return img, nil
	}
	img, err := b.opts.Runtime.Image(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	b.mu.Lock()
	b.images[ref] = img
	b.mu.Unlock()
	return img, nil
}

// failure says why a pod that ended did not succeed: nil when every app
// exited 0.
func failure(p *kurmav1.Pod) error {
	switch p.State {
	case kurmav1.PodState_POD_STATE_EXITED:
		for _, a := range p.Apps {
			if a.ExitCode == 0 {
				continue
			}
			if a.Signal != "" {
				return fmt.Errorf("killed by %s", a.Signal)
			}
			return fmt.Errorf("exit status %d", a.ExitCode)
		}
		return nil
	case kurmav1.PodState_POD_STATE_FAILED:
		return fmt.Errorf("failed: %s", p.Message)
	case kurmav1.PodState_POD_STATE_STOPPED:
		return errors.New("stopped")
	}
	return fmt.Errorf("ended in state %s", strings.ToLower(strings.TrimPrefix(p.State.String(), "POD_STATE_")))
}
