package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/apiserver"
	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/internal/syncbuf"
)

// daemon is a real API server on a temp socket, as `kurma daemon` runs it.
type daemon struct {
	socket string
	store  *image.Store
	srv    *apiserver.Server
}

func startDaemon(t *testing.T, extra ...net.Listener) *daemon {
	t.Helper()
	dir := t.TempDir()
	store, err := image.Open(filepath.Join(dir, "images"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	d := &daemon{socket: filepath.Join(dir, "kurma.sock"), store: store}
	d.srv = &apiserver.Server{
		Version: "test-daemon", Images: store, Events: apiserver.NewEvents(),
		Config: func() (string, []string, error) {
			return "hostname: test # cmdline kurma.hostname\n", []string{"config: x.yaml:3: hostnme: unknown key"}, nil
		},
	}
	l, err := apiserver.ListenUnix(d.socket, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.srv.Serve(ctx, append([]net.Listener{l}, extra...)...) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// kurma runs the command line in-process against the daemon.
func (d *daemon) kurma(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), strings.NewReader(stdin), &out, &errOut, append([]string{"-H", "unix://" + d.socket}, args...))
	return out.String(), errOut.String(), err
}

func (d *daemon) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := d.kurma(t, "", args...)
	if err != nil {
		t.Fatalf("kurma %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func writeImage(t *testing.T, name, version string, size int) string {
	t.Helper()
	data := acitest.Image(acitest.Manifest{Name: name, Labels: acitest.HostLabels("version", version)},
		append(acitest.RootFS("etc/hostname"), acitest.File("rootfs/data", strings.Repeat("x", size)))...)
	p := filepath.Join(t.TempDir(), strings.ReplaceAll(name, "/", "_")+".aci")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImageVerbs(t *testing.T) {
	d := startDaemon(t)
	small := writeImage(t, "example.com/small", "1.0", 10)
	big := writeImage(t, "example.com/big", "2.0", 100000)
	out := d.must(t, "image", "import", small)
	if !strings.Contains(out, "example.com/small:1.0") || !strings.HasPrefix(out, "sha512-") {
		t.Errorf("import printed %q", out)
	}
	// From stdin too; in a pipe, no progress is shown.
	data, _ := os.ReadFile(big)
	if out, errOut, err := d.kurma(t, string(data), "image", "import", "-"); err != nil || !strings.Contains(out, "example.com/big:2.0") || errOut != "" {
		t.Errorf("import from stdin: %v %q %q", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(d.must(t, "image", "list")), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "example.com/big:2.0") || !strings.Contains(lines[2], "example.com/small:1.0") {
		t.Errorf("list by name:\n%s", strings.Join(lines, "\n"))
	}
	lines = strings.Split(strings.TrimSpace(d.must(t, "image", "list", "--sort", "size")), "\n")
	if !strings.Contains(lines[1], "big") {
		t.Errorf("list by size:\n%s", strings.Join(lines, "\n"))
	}
	var listed struct {
		Images []struct {
			ID     string            `json:"id"`
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(d.must(t, "--json", "image", "list")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Images) != 2 || listed.Images[0].Labels["version"] == "" {
		t.Errorf("--json list: %+v", listed)
	}
	if _, _, err := d.kurma(t, "", "image", "list", "--sort", "colour"); err == nil || !strings.Contains(err.Error(), "name, size or imported") {
		t.Errorf("bad --sort: %v", err)
	}
	// rm by a unique prefix; an unknown one is an error that says so.
	if _, _, err := d.kurma(t, "", "image", "rm", "sha512-00000000ff"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("rm of an unknown prefix: %v", err)
	}
	id := listed.Images[0].ID
	d.must(t, "image", "rm", id[:24])
	if n := len(d.store.List()); n != 1 {
		t.Errorf("%d images after rm", n)
	}
	if out := d.must(t, "image", "gc"); !strings.Contains(out, "removed 1 images") {
		t.Errorf("gc: %q", out)
	}
	// A bad file is refused and nothing is stored.
	bad := filepath.Join(t.TempDir(), "bad.aci")
	os.WriteFile(bad, []byte("not an image at all"), 0o644)
	if _, _, err := d.kurma(t, "", "image", "import", bad); err == nil || !strings.Contains(err.Error(), "invalid_argument") {
		t.Errorf("import of garbage: %v", err)
	}
	if n := len(d.store.List()); n != 0 {
		t.Errorf("%d images after a failed import", n)
	}
}

func TestInfoVersionConfig(t *testing.T) {
	d := startDaemon(t)
	out := d.must(t, "info")
	for _, want := range []string{"Hostname:", "test-daemon (kurma daemon on another Linux host)", "Your role:  admin", "Memory:"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
	if out := d.must(t, "version"); !strings.Contains(out, "daemon test-daemon") {
		t.Errorf("version: %q", out)
	}
	out, errOut, err := d.kurma(t, "", "config", "show")
	if err == nil || !strings.Contains(out, "hostname: test # cmdline") || !strings.Contains(errOut, "hostnme: unknown key") {
		t.Errorf("config show: %v %q %q", err, out, errOut)
	}
	if _, _, err := d.kurma(t, "", "reboot"); err == nil || !strings.Contains(err.Error(), "not run on the Kurma OS") {
		t.Errorf("reboot on a host: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("hostname: node-1\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("hostname: node-1\nhostnme: x\n"), 0o644)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), nil, &out, &errOut, []string{"config", "validate", good}); err != nil || !strings.Contains(out.String(), "valid") {
		t.Errorf("validate good: %v %q", err, out.String())
	}
	out.Reset()
	err := run(context.Background(), nil, &out, &errOut, []string{"config", "validate", bad})
	if err == nil || !strings.Contains(errOut.String(), "bad.yaml:2") || !strings.Contains(errOut.String(), `did you mean "hostname"`) {
		t.Errorf("validate bad: %v %q", err, errOut.String())
	}
}

func TestNoDaemonErrorSaysWhat(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), nil, &out, &errOut, []string{"-H", "unix://" + filepath.Join(t.TempDir(), "none.sock"), "image", "list"})
	if err == nil || !strings.Contains(err.Error(), "no daemon on") {
		t.Errorf("got %v", err)
	}
	err = run(context.Background(), nil, &out, &errOut, []string{"-H", "10.1.2.3:4443", "info"})
	if err == nil || !strings.Contains(err.Error(), "needs --cert, --key and --ca") {
		t.Errorf("remote without certificates: %v", err)
	}
}

func TestCertsAndRemote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), nil, &out, &errOut, []string{"certs", "--dir", dir, "--host", "127.0.0.1", "--host", "localhost"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range apiserver.SetupFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("certs did not make %s", f)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "admin-key.pem")); fi == nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-key.pem mode: %v", fi)
	}
	l, err := apiserver.ListenTLS("127.0.0.1:0", apiserver.TLSFiles{
		Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server-key.pem"), ClientCA: filepath.Join(dir, "ca.pem"),
	})
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, l)
	remote := func(role string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), nil, &out, &errOut, append([]string{"-H", l.Addr().String(),
			"--cert", filepath.Join(dir, role+".pem"), "--key", filepath.Join(dir, role+"-key.pem"), "--ca", filepath.Join(dir, "ca.pem")}, args...))
		return out.String(), err
	}
	if out, err := remote("reader", "info"); err != nil || !strings.Contains(out, "Your role:  reader") {
		t.Errorf("reader info: %v %q", err, out)
	}
	img := writeImage(t, "example.com/r", "1", 1)
	if _, err := remote("reader", "image", "import", img); err == nil || !strings.Contains(err.Error(), "permission_denied") {
		t.Errorf("reader import: %v", err)
	}
	if out, err := remote("admin", "image", "import", img); err != nil || !strings.Contains(out, "example.com/r:1") {
		t.Errorf("admin import: %v %q", err, out)
	}
}

// TestProgressOnATerminal imports with a terminal as stderr: the upload's
// progress is drawn there, on one line redrawn in place.
func TestProgressOnATerminal(t *testing.T) {
	d := startDaemon(t)
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	var shown syncbuf.Buffer
	go io.Copy(&shown, master)
	img := writeImage(t, "example.com/progress", "1", 3<<20)
	var out bytes.Buffer
	if err := run(context.Background(), nil, &out, slave, []string{"-H", "unix://" + d.socket, "image", "import", img}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if s := shown.String(); !strings.Contains(s, "\r") || !strings.Contains(s, "upload "+img) || !strings.Contains(s, "MiB") {
		t.Errorf("the terminal showed %q", s)
	}
}
