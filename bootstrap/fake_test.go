package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

// fakeClock advances only when something sleeps.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// run is one run of a pod in the fake runtime: how it ends, and how long
// it ran (on the fake clock).
type run struct {
	exit      int
	state     kurmav1.PodState // exited by default
	ran       time.Duration
	output    []string
	createErr error
	waitErrs  []error // errors of Wait before it answers (a restarting daemon)
}

// fakeRuntime plays, for each pod name, its runs in order; after the
// last, a pod runs until the test ends.
type fakeRuntime struct {
	t     *testing.T
	clock *fakeClock
	mu    sync.Mutex
	runs  map[string][]run
	// calls records what was asked, in order: "remove NAME",
	// "create NAME", "replace NAME".
	calls     []string
	manifests map[string]*schema.PodManifest
	pods      map[string]run // by UUID
	names     map[string]string
	images    map[string]*Image
	n         int
	restarts  map[string]int
}

func newFakeRuntime(t *testing.T, clock *fakeClock) *fakeRuntime {
	return &fakeRuntime{t: t, clock: clock, runs: map[string][]run{}, manifests: map[string]*schema.PodManifest{},
		pods: map[string]run{}, names: map[string]string{}, restarts: map[string]int{},
		images: map[string]*Image{"kurma/busybox": {ID: "sha512-" + fmt.Sprintf("%0128x", 1), Name: "kurma/busybox",
			App: &types.App{Exec: types.Exec{"/bin/sh"}, User: "0", Group: "0"}}}}
}

func (f *fakeRuntime) Image(_ context.Context, ref string) (*Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[ref]
	if !ok {
		return nil, fmt.Errorf("%w: image %s", ErrNotFound, ref)
	}
	return img, nil
}

func (f *fakeRuntime) Create(_ context.Context, name string, manifest []byte, replace bool) (*kurmav1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	verb := "create"
	if replace {
		verb = "replace"
		f.restarts[name]++
	}
	f.calls = append(f.calls, verb+" "+name)
	var pm schema.PodManifest
	if err := json.Unmarshal(manifest, &pm); err != nil {
		f.t.Errorf("create %s: the manifest does not parse: %v", name, err)
	}
	f.manifests[name] = &pm
	var r run
	if rs := f.runs[name]; len(rs) > 0 {
		r, f.runs[name] = rs[0], rs[1:]
	} else {
		r = run{state: kurmav1.PodState_POD_STATE_RUNNING}
	}
	if r.createErr != nil {
		return nil, r.createErr
	}
	f.n++
	uuid := fmt.Sprintf("uuid-%d", f.n)
	f.pods[uuid] = r
	f.names[uuid] = name
	return &kurmav1.Pod{Uuid: uuid, Name: name, State: kurmav1.PodState_POD_STATE_RUNNING}, nil
}

func (f *fakeRuntime) Wait(ctx context.Context, uuid string) (*kurmav1.Pod, error) {
	f.mu.Lock()
	r, ok := f.pods[uuid]
	if ok && len(r.waitErrs) > 0 {
		err := r.waitErrs[0]
		r.waitErrs = r.waitErrs[1:]
		f.pods[uuid] = r
		f.mu.Unlock()
		return nil, err
	}
	restarts := f.restarts[f.names[uuid]]
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: pod %s", ErrNotFound, uuid)
	}
	if r.state == kurmav1.PodState_POD_STATE_RUNNING {
		<-ctx.Done() // it runs until the test ends
		return nil, ctx.Err()
	}
	// Making the pod takes a while; it is not part of the run.
	f.clock.advance(30 * time.Second)
	started := f.clock.Now()
	f.clock.advance(r.ran)
	state := r.state
	if state == 0 {
		state = kurmav1.PodState_POD_STATE_EXITED
	}
	return &kurmav1.Pod{Uuid: uuid, State: state, StartedAt: timestamppb.New(started), FinishedAt: timestamppb.New(f.clock.Now()),
		Apps: []*kurmav1.App{{Name: f.names[uuid], ExitCode: int32(r.exit), Restarts: int32(restarts)}}}, nil
}

func (f *fakeRuntime) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "remove "+name)
	return nil
}

func (f *fakeRuntime) Logs(_ context.Context, uuid string, line func(string)) error {
	f.mu.Lock()
	r := f.pods[uuid]
	f.mu.Unlock()
	for _, l := range r.output {
		line(l)
	}
	return nil
}

func (f *fakeRuntime) history() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// logger collects what the bootstrap logs.
type logger struct {
	mu    sync.Mutex
	lines []string
}

func (l *logger) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logger) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func mustMountPoint(t *testing.T, name, path string) types.MountPoint {
	t.Helper()
	n, err := types.NewACName(name)
	if err != nil {
		t.Fatal(err)
	}
	return types.MountPoint{Name: *n, Path: path}
}
