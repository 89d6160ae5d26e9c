package config

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kurmaos/kurma/config/datasource"
	"github.com/kurmaos/kurma/config/volume"
)

// fakeClock advances when slept on, so retries take no time.
type fakeClock struct{ now time.Time }

func (c *fakeClock) clock() datasource.Clock {
	return datasource.Clock{
		Now:   func() time.Time { return c.now },
		Sleep: func(ctx context.Context, d time.Duration) error { c.now = c.now.Add(d); return ctx.Err() },
	}
}

var testVars = datasource.Vars{"mac": "52:54:00:12:34:56", "uuid": "4c4c4544-0042", "hostname": ""}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// noVolumes is a finder with no devices, so tests do not read the
// machine's disks.
var noVolumes = volume.Finder{Devices: func() ([]string, error) { return nil, nil }}

func TestLoadURLRetriesThenSucceeds(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 4 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/config/52:54:00:12:34:56/node-a" {
			http.Error(w, "wrong path "+r.URL.Path, http.StatusNotFound)
			return
		}
		w.Write([]byte("hostname: from-url\nnetwork: {dns: {servers: [9.9.9.9]}}\n"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	initrd := writeFile(t, dir, "config.yaml", "hostname: node-a\n")
	clk := &fakeClock{now: time.Unix(1000, 0)}
	eff, results, errs := Load(context.Background(), Sources{
		InitrdFile: initrd,
		Cmdline:    "console=ttyS0 kurma.config.url=" + srv.URL + "/config/${mac}/${hostname} kurma.datasources=url",
		Env:        DatasourceEnv{Client: srv.Client(), Vars: testVars, Finder: noVolumes, Clock: clk.clock()},
	})
	if len(errs) > 0 {
		t.Fatal(errStrings(errs))
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("requests = %d, want 4 (three failures, then success)", got)
	}
	if eff.Config.Hostname != "from-url" {
		t.Errorf("hostname = %q, want from-url", eff.Config.Hostname)
	}
	o, _ := eff.Origin("hostname")
	if want := "datasource url " + srv.URL + "/config/52:54:00:12:34:56/node-a:1"; o.String() != want {
		t.Errorf("origin = %q, want %q", o, want)
	}
	if len(results) != 1 || results[0].Layer == nil {
		t.Errorf("results = %v", results)
	}
}

func TestLoadURLGivesUpAtTimeout(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	start := clk.now
	eff, results, errs := Load(context.Background(), Sources{
		Cmdline: "kurma.hostname=local kurma.config.url=" + srv.URL + "/c kurma.datasources.url.timeout=1",
		Env:     DatasourceEnv{Client: srv.Client(), Vars: testVars, Finder: noVolumes, Clock: clk.clock()},
	})
	// kurma.datasources.url.timeout is not a key: lists of entries cannot
	// be set on the command line.
	if len(errs) != 2 {
		t.Fatalf("errors = %s", errStrings(errs))
	}
	if !strings.HasPrefix(errs[0].Error(), "config: cmdline: kurma.datasources.url.timeout: unknown key") {
		t.Errorf("first error = %v", errs[0])
	}
	var de *DatasourceError
	if !errors.As(errs[1], &de) || !strings.Contains(de.Error(), "gave up after") || !strings.Contains(de.Error(), "502 Bad Gateway") {
		t.Errorf("second error = %v, want the url datasource given up", errs[1])
	}
	if took := clk.now.Sub(start); took > DefaultURLTimeout {
		t.Errorf("retried for %s, longer than the timeout %s", took, DefaultURLTimeout)
	}
	if n := calls.Load(); n < 5 {
		t.Errorf("requests = %d, want retries", n)
	}
	if eff.Config.Hostname != "local" {
		t.Errorf("hostname = %q, want the local layers kept", eff.Config.Hostname)
	}
	if len(results) != 3 || results[2].Name != "url" || results[2].Layer != nil || results[2].Absent {
		t.Errorf("results = %v, want the url failed", results)
	}
}

// TestURLTimeoutBoundsAHangingServer uses the real clock: a server that
// never answers is cut off by the timeout.
func TestURLTimeoutBoundsAHangingServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	u := &datasource.URL{Template: srv.URL, Timeout: 300 * time.Millisecond, Client: srv.Client()}
	done := make(chan error, 1)
	go func() {
		_, err := u.Fetch(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline exceeded", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Fetch did not return within 20s for a 300ms timeout")
	}
}

func TestLoadURLPermanentAndBroken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/broken":
			w.Write([]byte("hostname: ok\nnetwork: {dns: {servers: [nope]}}\nbogus: [\n"))
		case "/partly":
			w.Write([]byte("hostname: partly\ndatasources: [{kind: url, url: 'http://evil/'}]\nnetwork: {dns: {servers: [nope, 8.8.8.8]}}\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		path, hostname string
		want           []string
	}{
		{"/missing", "", []string{"config: datasource url: " + srv.URL + "/missing: server answered 404 Not Found; skipped"}},
		{"/broken", "", []string{"config: " + srv.URL + "/broken:3: did not find expected node content (YAML syntax); the whole file is ignored"}},
		{"/partly", "partly", []string{
			"config: " + srv.URL + `/partly:3: network.dns.servers[0]: "nope" is not an IP address`,
			"config: " + srv.URL + "/partly:2: datasources: a datasource cannot configure datasources; set them in the initrd file, the OEM disk or the command line",
		}},
	} {
		clk := &fakeClock{now: time.Unix(1000, 0)}
		eff, _, errs := Load(context.Background(), Sources{
			Cmdline: "kurma.config.url=" + srv.URL + tc.path,
			Env:     DatasourceEnv{Client: srv.Client(), Vars: testVars, Finder: noVolumes, Clock: clk.clock()},
		})
		if got, want := errStrings(errs), strings.Join(tc.want, "\n"); got != want {
			t.Errorf("%s: errors\n%s\nwant\n%s", tc.path, got, want)
		}
		if eff.Config.Hostname != tc.hostname {
			t.Errorf("%s: hostname = %q, want %q", tc.path, eff.Config.Hostname, tc.hostname)
		}
		if ds := eff.Config.Datasources; ds[len(ds)-1].URL != srv.URL+tc.path {
			t.Errorf("%s: datasources changed by a datasource: %+v", tc.path, ds)
		}
	}
}

// TestLoaderSteps runs the volume datasources before the URL, as the boot
// does around the network phase.
func TestLoaderSteps(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hostname: from-url\n"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	writeFile(t, dir, "seed/user-data", "#cloud-config\nhostname: from-nocloud\nsysctls: {vm.swappiness: 5}\n")
	oem, errs := Parse(LayerOEM, "LABEL=KURMA-OEM:/config.yaml", []byte("datasources: [{kind: nocloud, path: "+filepath.Join(dir, "seed")+"}]\n"))
	if len(errs) > 0 {
		t.Fatal(errStrings(errs))
	}
	ld := NewLoader(Sources{OEM: oem, Cmdline: "kurma.config.url=" + srv.URL,
		Env: DatasourceEnv{Client: srv.Client(), Vars: testVars, Finder: noVolumes}})
	results := ld.RunDatasources(context.Background(), func(d *Datasource) bool { return !d.NeedsNetwork() })
	if len(results) != 2 || results[0].Layer == nil || !results[1].Absent {
		t.Fatalf("local results = %v, want nocloud read and configdrive absent", results)
	}
	eff, errs := ld.Effective()
	if len(errs) > 0 || eff.Config.Hostname != "from-nocloud" {
		t.Fatalf("after the volumes: hostname %q, errors %s", eff.Config.Hostname, errStrings(errs))
	}
	results = ld.RunDatasources(context.Background(), nil)
	if len(results) != 1 || results[0].Name != "url" {
		t.Fatalf("network results = %v, want the url alone", results)
	}
	eff, errs = ld.Effective()
	if len(errs) > 0 || eff.Config.Hostname != "from-url" || eff.Config.Sysctls["vm.swappiness"] != "5" {
		t.Errorf("after the url: %+v, errors %s", eff.Config, errStrings(errs))
	}
}

// image builds a volume image with a tool, or skips the test.
func image(t *testing.T, kind, label string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for name, data := range files {
		writeFile(t, src, name, data)
	}
	out := filepath.Join(dir, "volume.img")
	run := func(name string, args ...string) {
		t.Helper()
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed (Debian: xorriso, dosfstools, mtools): %v", name, err)
		}
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
		}
	}
	switch kind {
	case "iso":
		run("xorriso", "-as", "mkisofs", "-quiet", "-o", out, "-V", label, "-J", "-R", src)
	case "vfat":
		run("mkfs.vfat", "-C", "-n", label, out, "1440")
		ents, _ := os.ReadDir(src)
		args := []string{"-s", "-i", out}
		for _, e := range ents {
			args = append(args, filepath.Join(src, e.Name()))
		}
		run("mcopy", append(args, "::/")...)
	}
	return out
}

func TestLoadVolumes(t *testing.T) {
	for _, tc := range []struct {
		name, kind, label, file, cmdline string
	}{
		{"nocloud iso", "iso", "cidata", "user-data", ""},
		{"nocloud vfat", "vfat", "CIDATA", "user-data", ""},
		{"configdrive iso", "iso", "config-2", "openstack/latest/user_data", ""},
		{"configdrive vfat", "vfat", "CONFIG-2", "openstack/latest/user_data", "kurma.datasources=configdrive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := image(t, tc.kind, tc.label, map[string]string{tc.file: "hostname: from-" + tc.kind + "\n", "meta-data": "instance-id: i-1\n"})
			other := t.TempDir() + "/empty.img"
			writeFile(t, filepath.Dir(other), "empty.img", strings.Repeat("\x00", 65536))
			finder := volume.Finder{Devices: func() ([]string, error) { return []string{other, img}, nil }}
			eff, results, errs := Load(context.Background(), Sources{Cmdline: tc.cmdline, Env: DatasourceEnv{Vars: testVars, Finder: finder}})
			if len(errs) > 0 {
				t.Fatal(errStrings(errs))
			}
			if eff.Config.Hostname != "from-"+tc.kind {
				t.Errorf("hostname = %q (results %v)", eff.Config.Hostname, results)
			}
			o, _ := eff.Origin("hostname")
			if want := img + ":" + tc.file + ":1"; o.Source+":"+strconv.Itoa(o.Line) != want {
				t.Errorf("origin = %+v, want %s", o, want)
			}
		})
	}
}

func TestLoadVolumeAbsentAndBroken(t *testing.T) {
	img := image(t, "iso", "cidata", map[string]string{"meta-data": "instance-id: i-1\n"})
	finder := volume.Finder{Devices: func() ([]string, error) { return []string{img}, nil }}
	eff, results, errs := Load(context.Background(), Sources{Env: DatasourceEnv{Vars: testVars, Finder: finder}})
	want := "config: datasource nocloud: " + img + ":user-data: the volume has no user-data; skipped"
	if got := errStrings(errs); got != want {
		t.Errorf("errors:\n%s\nwant\n%s", got, want)
	}
	if len(results) != 2 || !results[1].Absent {
		t.Errorf("results = %v, want configdrive absent", results)
	}
	if eff.Config.Hostname != "" {
		t.Errorf("hostname = %q, want none (no layer sets one)", eff.Config.Hostname)
	}
}
