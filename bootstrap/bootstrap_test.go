package bootstrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/config"
)

func container(name string, kind config.ContainerKind, essential bool) config.Container {
	c := config.Container{Name: name, Enabled: true, Image: "kurma/busybox", Kind: kind, Essential: essential,
		Restart: config.Restart{Backoff: time.Second, MaxBackoff: time.Minute}}
	return c
}

func newTest(t *testing.T) (*Bootstrap, *fakeRuntime, *fakeClock, *logger) {
	t.Helper()
	clock := newFakeClock()
	rt := newFakeRuntime(t, clock)
	log := &logger{}
	b := New(Options{Runtime: rt, FilesDir: t.TempDir(), Logf: log.logf, Clock: clock})
	return b, rt, clock, log
}

func TestNewPlan(t *testing.T) {
	eff, merrs := config.Merge(config.Defaults())
	if len(merrs) > 0 {
		t.Fatal(merrs)
	}
	cfg := &eff.Config
	cfg.Bootstrap.Containers = []config.Container{
		container("setup", config.KindRunToCompletion, true),
		container("web", config.KindService, false),
		container("off", config.KindRunToCompletion, false),
		container("migrate", config.KindRunToCompletion, false),
		container("console", config.KindService, false),
	}
	cfg.Bootstrap.Containers[2].Enabled = false
	p, errs := NewPlan(cfg)
	names := func(cs []config.Container) (out []string) {
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	if got, want := names(p.RunToCompletion), []string{"setup", "migrate"}; !reflect.DeepEqual(got, want) {
		t.Errorf("run-to-completion %v, want %v", got, want)
	}
	if got, want := names(p.Services), []string{"console", "web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `"console" is the console service's name`) {
		t.Errorf("errors %v, want one about the name console", errs)
	}
	if p.Services[0].Image != ConsoleImage {
		t.Errorf("the console service runs %s", p.Services[0].Image)
	}

	cfg.Services.Console.Enabled = false
	p, errs = NewPlan(cfg)
	if got, want := names(p.Services), []string{"web", "console"}; !reflect.DeepEqual(got, want) || len(errs) != 0 {
		t.Errorf("without the console service: services %v (want %v), errors %v", got, want, errs)
	}
}

// TestRunToCompletionOrder runs three containers: each is created after
// the one before ended, the pod left from an earlier boot is removed
// first, and the output reaches the log.
func TestRunToCompletionOrder(t *testing.T) {
	b, rt, _, log := newTest(t)
	rt.runs["first"] = []run{{output: []string{"wrote /data/x"}}}
	rt.runs["second"] = []run{{output: []string{"read hello"}}}
	cs := []config.Container{container("first", config.KindRunToCompletion, true), container("second", config.KindRunToCompletion, true)}
	if err := b.RunToCompletion(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	want := []string{"remove first", "create first", "remove second", "create second"}
	if got := rt.history(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	lines := strings.Join(log.all(), "\n")
	for _, w := range []string{"bootstrap: first: wrote /data/x", "bootstrap: second: read hello", "bootstrap: second done in"} {
		if !strings.Contains(lines, w) {
			t.Errorf("log lacks %q:\n%s", w, lines)
		}
	}
}

// TestEssentialFailureStops: an essential container that exits 3 ends
// the run with its name; those after it never start. A non-essential
// one that fails does not stop the run.
func TestEssentialFailureStops(t *testing.T) {
	b, rt, _, log := newTest(t)
	rt.runs["optional"] = []run{{exit: 1}}
	rt.runs["setup"] = []run{{exit: 3}}
	cs := []config.Container{
		container("optional", config.KindRunToCompletion, false),
		container("setup", config.KindRunToCompletion, true),
		container("after", config.KindRunToCompletion, true),
	}
	err := b.RunToCompletion(context.Background(), cs)
	var ce *ContainerError
	if !errors.As(err, &ce) || ce.Name != "setup" || err.Error() != "bootstrap container setup failed: exit status 3" {
		t.Fatalf("got %v, want the failure of setup", err)
	}
	for _, c := range rt.history() {
		if strings.HasSuffix(c, "after") {
			t.Errorf("%s: a container after the failed one was run", c)
		}
	}
	if !strings.Contains(strings.Join(log.all(), "\n"), "bootstrap: optional failed, boot goes on: exit status 1") {
		t.Errorf("the optional failure is not logged: %v", log.all())
	}

	// A pod that fails to start, or is killed, fails the same way.
	for _, r := range []struct {
		run  run
		want string
	}{
		{run{state: kurmav1.PodState_POD_STATE_FAILED}, "failed: "},
		{run{createErr: errors.New("no such image")}, "no such image"},
	} {
		b, rt, _, _ := newTest(t)
		rt.runs["setup"] = []run{r.run}
		err := b.RunToCompletion(context.Background(), cs[1:2])
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), r.want) {
			t.Errorf("got %v, want %q", err, r.want)
		}
	}
}

// TestRunToCompletionRetries: on-failure tries again after 1 s, 2 s,
// 4 s… while the wait stays within max_backoff, each try replacing the
// pod before; a try that succeeds ends it.
func TestRunToCompletionRetries(t *testing.T) {
	b, rt, clock, _ := newTest(t)
	c := container("setup", config.KindRunToCompletion, true)
	c.Restart = config.Restart{Policy: config.RestartOnFailure, Backoff: time.Second, MaxBackoff: 10 * time.Second}
	rt.runs["setup"] = []run{{exit: 1}, {exit: 1}, {exit: 1}, {exit: 1}, {exit: 1}, {exit: 1}}
	err := b.RunToCompletion(context.Background(), []config.Container{c})
	if err == nil {
		t.Fatal("it succeeded")
	}
	if got, want := clock.slept(), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}; !reflect.DeepEqual(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	want := []string{"remove setup", "create setup", "replace setup", "replace setup", "replace setup", "replace setup"}
	if got := rt.history(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}

	b, rt, clock, _ = newTest(t)
	rt.runs["setup"] = []run{{exit: 1}, {exit: 0}}
	if err := b.RunToCompletion(context.Background(), []config.Container{c}); err != nil {
		t.Errorf("the second try succeeded, yet: %v", err)
	}
	if got := clock.slept(); !reflect.DeepEqual(got, []time.Duration{time.Second}) {
		t.Errorf("waits %v", got)
	}
}

// waitFor polls the services until cond holds.
func waitFor(t *testing.T, b *Bootstrap, cond func([]ServiceState) bool) []ServiceState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := b.Services()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("services: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServiceBackoff: a service that keeps exiting is started again
// after 1 s, 2 s, 4 s, … up to max_backoff; a run longer than
// max_backoff starts the waits over. Each restart replaces the pod, and
// the runtime's count goes up.
func TestServiceBackoff(t *testing.T) {
	b, rt, clock, log := newTest(t)
	c := container("flaky", config.KindService, false)
	c.Restart.MaxBackoff = 8 * time.Second
	rt.runs["flaky"] = []run{{exit: 1}, {exit: 1}, {exit: 1}, {exit: 1}, {exit: 1}, {exit: 2, ran: time.Minute}, {exit: 1}, {exit: 0}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.StartServices(ctx, []config.Container{c}); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, b, func(s []ServiceState) bool { return len(s) == 1 && s[0].Restarts == 8 && s[0].Running })
	cancel()
	b.Wait()
	want := []time.Duration{1, 2, 4, 8, 8, 1, 2, 4}
	for i := range want {
		want[i] *= time.Second
	}
	if got := clock.slept(); !reflect.DeepEqual(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	if st[0].Last != "exited 0" {
		t.Errorf("last end %q", st[0].Last)
	}
	calls := rt.history()
	if calls[0] != "remove flaky" || calls[1] != "create flaky" || len(calls) != 10 || calls[9] != "replace flaky" {
		t.Errorf("calls %v", calls)
	}
	if rt.restarts["flaky"] != 8 {
		t.Errorf("the runtime counted %d restarts", rt.restarts["flaky"])
	}
	if !strings.Contains(strings.Join(log.all(), "\n"), "bootstrap: service flaky ended (exit status 1); restart 1 in 1s") {
		t.Errorf("log: %v", log.all())
	}
}

// TestServicePolicies: never and on-failure-after-success leave the
// service ended; a removed pod is started again; a runtime that does not
// answer for a while is waited for, not taken for an end.
func TestServicePolicies(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   config.RestartPolicy
		runs     []run
		restarts int
		givenUp  bool
	}{
		{"never", config.RestartNever, []run{{exit: 1}}, 0, true},
		{"on-failure-success", config.RestartOnFailure, []run{{exit: 1}, {exit: 0}}, 1, true},
		{"always-success", config.RestartAlways, []run{{exit: 0}}, 1, false},
		{"removed", config.RestartOnFailure, []run{{state: kurmav1.PodState_POD_STATE_STOPPED}, {waitErrs: []error{ErrNotFound}}}, 2, false},
		{"daemon-restarts", config.RestartAlways, []run{{exit: 1, waitErrs: []error{errors.New("unavailable"), errors.New("unavailable")}}}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, rt, _, _ := newTest(t)
			c := container("svc", config.KindService, false)
			c.Restart.Policy = tc.policy
			rt.runs["svc"] = tc.runs
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := b.StartServices(ctx, []config.Container{c}); err != nil {
				t.Fatal(err)
			}
			st := waitFor(t, b, func(s []ServiceState) bool {
				return s[0].Restarts == tc.restarts && (s[0].GivenUp == tc.givenUp) && (tc.givenUp || s[0].Running)
			})
			cancel()
			b.Wait()
			if tc.name == "removed" && st[0].Last != "its pod was removed" {
				t.Errorf("last: %q", st[0].Last)
			}
		})
	}
}

// TestEssentialServiceThatCannotStart is an error of the start; the
// service is still tried again.
func TestEssentialServiceThatCannotStart(t *testing.T) {
	b, rt, _, _ := newTest(t)
	c := container("db", config.KindService, true)
	rt.runs["db"] = []run{{createErr: errors.New("no room")}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := b.StartServices(ctx, []config.Container{c})
	var ce *ContainerError
	if !errors.As(err, &ce) || ce.Name != "db" {
		t.Fatalf("got %v", err)
	}
	waitFor(t, b, func(s []ServiceState) bool { return s[0].Restarts == 1 && s[0].Running })
	cancel()
	b.Wait()
}

// TestManifest checks the pod a container becomes: args, environment,
// files bound read-only from the host with their modes, volumes,
// isolators, and an empty volume for an unfilled mount point.
func TestManifest(t *testing.T) {
	b, rt, _, _ := newTest(t)
	img := rt.images["kurma/busybox"]
	img.App.Environment.Set("PATH", "/bin")
	img.App.MountPoints = append(img.App.MountPoints, mustMountPoint(t, "cache", "/cache"))
	c := container("web", config.KindService, false)
	c.Args = []string{"/bin/httpd", "-f"}
	c.Env = map[string]string{"GREETING": "hello", "PATH": "/usr/bin"}
	c.Files = []config.File{{Path: "/etc/web.conf", Content: "root = /data\n", Mode: "0640"}, {Path: "/etc/motd", Content: "hi"}}
	c.Isolators = map[string]any{"os/linux/namespaces": map[string]any{"net": "host"}, "resource/memory": map[string]any{"limit": "512M"}}
	src := filepath.Join(t.TempDir(), "web")
	c.Volumes = []config.Volume{{Name: "data", Kind: "host", Source: src, Path: "/data", ReadOnly: true}, {Name: "scratch", Kind: "empty", Path: "/scratch"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.StartServices(ctx, []config.Container{c}); err != nil {
		t.Fatal(err)
	}
	pm := rt.manifests["web"]
	app := pm.Apps[0]
	if app.Name != "web" || !reflect.DeepEqual([]string(app.App.Exec), c.Args) {
		t.Errorf("app %s exec %v", app.Name, app.App.Exec)
	}
	if v, _ := app.App.Environment.Get("GREETING"); v != "hello" {
		t.Errorf("GREETING=%q", v)
	}
	if v, _ := app.App.Environment.Get("PATH"); v != "/usr/bin" {
		t.Errorf("PATH=%q: the configuration's value must win", v)
	}
	if _, err := os.Stat(src); err != nil {
		t.Errorf("the host volume's source was not made: %v", err)
	}
	mounts := map[string]string{}
	for _, m := range app.Mounts {
		mounts[m.Path] = m.Volume.String()
	}
	vols := map[string]int{}
	for i, v := range pm.Volumes {
		vols[v.Name.String()] = i
	}
	for path, want := range map[string]string{"/etc/web.conf": "0640 root = /data\n", "/etc/motd": "0644 hi"} {
		v := pm.Volumes[vols[mounts[path]]]
		if v.Kind != "host" || v.ReadOnly == nil || !*v.ReadOnly {
			t.Errorf("%s: volume %+v, want a read-only host volume", path, v)
			continue
		}
		fi, err := os.Stat(v.Source)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(v.Source)
		if got := fi.Mode().Perm().String() + " " + string(data); got != modeString(want) {
			t.Errorf("%s: %q, want %q", path, got, modeString(want))
		}
	}
	if mounts["/data"] != "data" || pm.Volumes[vols["data"]].Source != src || !*pm.Volumes[vols["data"]].ReadOnly {
		t.Errorf("data volume: %+v", pm.Volumes[vols["data"]])
	}
	if mounts["/scratch"] != "scratch" || pm.Volumes[vols["scratch"]].Kind != "empty" {
		t.Errorf("scratch volume: %+v", pm.Volumes)
	}
	if mounts["/cache"] != "cache" || pm.Volumes[vols["cache"]].Kind != "empty" {
		t.Errorf("the mount point cache is not filled: %+v", pm.Volumes)
	}
	if len(pm.Isolators) != 2 || pm.Isolators[0].Name != "os/linux/namespaces" || string(*pm.Isolators[0].ValueRaw) != `{"net":"host"}` {
		t.Errorf("isolators: %+v", pm.Isolators)
	}
}

func modeString(s string) string {
	mode, rest, _ := strings.Cut(s, " ")
	m := map[string]string{"0640": "-rw-r-----", "0644": "-rw-r--r--"}[mode]
	return m + " " + rest
}
