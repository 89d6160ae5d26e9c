package pod_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/containers/pod"
)

// Privileged tests run real pods: they need root and
// KURMA_TEST_PRIVILEGED=1 (make test-privileged sets it).
// Benchmarks run with KURMA_BENCH=1 too (make bench).
func privileged(t testing.TB) {
	t.Helper()
	if !privilegedRun() {
		t.Skip("needs root and KURMA_TEST_PRIVILEGED=1 (make test-privileged) or KURMA_BENCH=1 (make bench)")
	}
}

func privilegedRun() bool {
	return os.Geteuid() == 0 && (os.Getenv("KURMA_TEST_PRIVILEGED") == "1" || os.Getenv("KURMA_BENCH") == "1")
}

var binDir string // kurma and kurma-stage, built once by TestMain

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	if privilegedRun() {
		dir, err := os.MkdirTemp("", "kurma-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binDir = dir
		for _, b := range []string{"kurma", "kurma-stage", "probe"} {
			pkg := "github.com/kurmaos/kurma/cmd/" + b
			if b == "probe" {
				pkg = "./testdata/probe"
			}
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, b), pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b, err, out)
				os.Exit(1)
			}
		}
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// stageBinary is the binary tests run as pods' init: the kurma binary,
// as a daemon does by default.
func stageBinary() string { return filepath.Join(binDir, "kurma") }

// env is a store and a manager in temporary directories, with a busybox
// image.
type env struct {
	t       testing.TB
	dir     string
	store   *image.Store
	m       *pod.Manager
	busybox *image.Image
	opts    pod.Options
}

func newEnv(t testing.TB, configure ...func(*pod.Options)) *env {
	t.Helper()
	privileged(t)
	e := &env{t: t, dir: t.TempDir()}
	var err error
	e.store, err = image.Open(filepath.Join(e.dir, "images"), image.Options{
		InUse: func(ctx context.Context) ([]string, error) { return e.m.ImagesInUse(ctx) },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.busybox = e.importImage(busyboxImage(t, "example.com/busybox", nil))
	// The runtime directory is a tmpfs, as /run is on the Kurma OS.
	run := filepath.Join(e.dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", run, "tmpfs", 0, "mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(run, unix.MNT_DETACH) })
	e.opts = pod.Options{Dir: filepath.Join(e.dir, "pods"), RunDir: filepath.Join(run, "pods"), Images: e.store, StageBinary: stageBinary(), StopGrace: 5 * time.Second, Logf: t.Logf}
	for _, c := range configure {
		c(&e.opts)
	}
	e.open()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, p := range e.m.List() {
			if err := e.m.Remove(ctx, p.UUID()); err != nil {
				t.Errorf("cleanup: remove %s: %v", p.UUID(), err)
			}
		}
		e.m.Close()
		e.store.Close()
	})
	return e
}

// open opens a manager on the pods directory (again).
func (e *env) open() {
	e.t.Helper()
	m, err := pod.Open(context.Background(), e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
}

func (e *env) importImage(aci []byte) *image.Image {
	e.t.Helper()
	img, err := e.store.Import(context.Background(), bytes.NewReader(aci), image.ImportOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return img
}

// sh is an app of the busybox image running a shell script.
func (e *env) sh(name, script string) pod.ImageApp {
	return pod.ImageApp{Image: e.busybox.ID, Name: name, Exec: []string{"/bin/sh", "-c", script}}
}

// create creates a pod and fails the test if it does not start.
func (e *env) create(opts pod.CreateOptions) *pod.Pod {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := e.m.Create(ctx, opts)
	if err != nil {
		if p != nil {
			e.t.Logf("stage.log: %s", readFile(filepath.Join(p.RunDir(), "stage.log")))
		}
		e.t.Fatalf("create: %v", err)
	}
	return p
}

// run creates a pod and waits for it to end.
func (e *env) run(opts pod.CreateOptions) (*pod.Pod, pod.Status) {
	e.t.Helper()
	p := e.create(opts)
	return p, wait(e.t, p)
}

func wait(t testing.TB, p *pod.Pod) pod.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := p.Wait(ctx)
	if err != nil {
		t.Fatalf("wait for pod %s: %v (status %+v)", p.UUID(), err, st)
	}
	return st
}

func readFile(name string) string {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(data)
}

// logOf is an app's log.
func logOf(p *pod.Pod, app string) string {
	return readFile(p.LogPath(app))
}

// exitCodes maps each app to its exit code (-1 if it has none).
func exitCodes(st pod.Status) map[string]int {
	codes := map[string]int{}
	for _, a := range st.Apps {
		codes[a.Name] = -1
		if a.Exit != nil {
			codes[a.Name] = a.Exit.Code
		}
	}
	return codes
}

// busyboxImage is an ACI with a static busybox and its applets, users
// root, kurmauser (1000) and nobody, groups root, kurmagroup (2000),
// nogroup, and /opt/owned owned by 3000:3001. app is the manifest's
// "app" (nil: /bin/true as root).
func busyboxImage(t testing.TB, name string, app map[string]any, extra ...acitest.Entry) []byte {
	t.Helper()
	return buildBusybox(t, name, app, "", extra)
}

// busyboxImageWithout is busyboxImage without the top-level directory
// skip (for extra to replace).
func busyboxImageWithout(t testing.TB, name, skip string, extra ...acitest.Entry) []byte {
	t.Helper()
	return buildBusybox(t, name, nil, skip, extra)
}

func buildBusybox(t testing.TB, name string, app map[string]any, skip string, extra []acitest.Entry) []byte {
	data, err := acitest.Busybox(name, app, skip, extra...)
	if err != nil {
		t.Skipf("busybox-static is needed (scripts/setup installs it): %v", err)
	}
	return data
}
