package fetch_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/fetch"
	"github.com/kurmaos/kurma/containers/fetch/fetchtest"
	"github.com/kurmaos/kurma/containers/trust"
)

type env struct {
	srv    *fetchtest.Server
	key    *fetchtest.Key
	trust  *trust.Store
	cfg    fetch.Config
	image  []byte
	os, ar string
	dials  int
}

// newEnv serves example.com/app version 1.0.0 and "latest", signed with
// a key trusted for example.com.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{srv: fetchtest.NewServer(t), key: fetchtest.NewKey(t, "signer")}
	var err error
	if e.os, e.ar, err = aci.HostPlatform(); err != nil {
		t.Fatal(err)
	}
	if e.trust, err = trust.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.trust.Add("example.com", e.key.Public(t)); err != nil {
		t.Fatal(err)
	}
	e.image, err = acitest.Compress(acitest.Image(acitest.Manifest{Name: "example.com/app", Labels: acitest.HostLabels("version", "1.0.0")}, acitest.RootFS("etc/", "etc/hostname")...), "gzip")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "latest"} {
		e.serve(t, "example.com/app", v, e.image, e.key)
	}
	e.cfg = fetch.Config{
		RootCAs: e.srv.RootCAs(),
		Allow:   fetch.Whitelist{Names: []string{"example.com"}, Hosts: []string{"example.com"}},
		Trust:   e.trust,
		TempDir: t.TempDir(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			e.dials++
			return e.srv.Dial(ctx, network, addr)
		},
	}
	return e
}

// serve puts an image and, if key is set, its signature where discovery
// finds them.
func (e *env) serve(t *testing.T, name, version string, data []byte, key *fetchtest.Key) {
	e.srv.Serve(fetchtest.ImagePath(name, version, e.os, e.ar, "aci"), data)
	if key != nil {
		e.srv.Serve(fetchtest.ImagePath(name, version, e.os, e.ar, "aci.asc"), key.Sign(t, data))
	}
}

func (e *env) fetcher(t *testing.T) *fetch.Fetcher {
	t.Helper()
	f, err := fetch.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAll(t *testing.T, d *fetch.Download) []byte {
	t.Helper()
	b, err := io.ReadAll(d.File)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDiscoveryGoodSignature(t *testing.T) {
	for _, ref := range []string{"example.com/app:1.0.0", "example.com/app"} {
		t.Run(ref, func(t *testing.T) {
			e := newEnv(t)
			var progress []fetch.Progress
			d, err := e.fetcher(t).Fetch(context.Background(), ref, fetch.Options{Progress: func(p fetch.Progress) { progress = append(progress, p) }})
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			defer d.Close()
			if d.Signer == nil || d.Name != "example.com/app" {
				t.Errorf("signer %v, name %q", d.Signer, d.Name)
			}
			if got := readAll(t, d); string(got) != string(e.image) {
				t.Errorf("downloaded %d bytes, want the %d served", len(got), len(e.image))
			}
			reqs := e.srv.Requests()
			if !slices.Contains(reqs, "example.com/app?ac-discovery=1") {
				t.Errorf("no discovery request in %q", reqs)
			}
			if len(progress) == 0 || progress[0].Done != int64(len(e.image)) {
				t.Errorf("progress = %+v, want a report of %d bytes", progress, len(e.image))
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	intruder := fetchtest.NewKey(t, "intruder")
	tests := []struct {
		name    string
		asc     string // "good", "intruder", "none" or "changed" (bytes changed after signing)
		trustAt string // prefix the good key is trusted for, if not example.com
		want    error
	}{
		{name: "good", asc: "good"},
		{name: "signed by an untrusted key", asc: "intruder", want: trust.ErrBadSignature},
		{name: "missing signature", asc: "none", want: fetch.ErrNotFound},
		{name: "bytes changed after signing", asc: "changed", want: trust.ErrBadSignature},
		{name: "key trusted for another prefix", asc: "good", trustAt: "other.com", want: trust.ErrNoKeys},
		{name: "key trusted for all", asc: "good", trustAt: "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.trustAt != "" {
				ts, err := trust.Open(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ts.Add(tt.trustAt, e.key.Public(t)); err != nil {
					t.Fatal(err)
				}
				e.cfg.Trust = ts
			}
			aciPath := fetchtest.ImagePath("example.com/app", "1.0.0", e.os, e.ar, "aci")
			ascPath := aciPath + ".asc"
			switch tt.asc {
			case "intruder":
				e.srv.Serve(ascPath, intruder.Sign(t, e.image))
			case "none":
				e.srv.Redirect(ascPath, "/not-there")
			case "changed":
				e.srv.Serve(aciPath, append(append([]byte(nil), e.image...), 0))
			}
			f := e.fetcher(t)
			d, err := f.Fetch(context.Background(), "example.com/app:1.0.0", fetch.Options{})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				d.Close()
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Fetch error = %v, want %v", err, tt.want)
			}
			// The insecure option lets the same image in, unchecked.
			d, err = f.Fetch(context.Background(), "example.com/app:1.0.0", fetch.Options{Insecure: fetch.InsecureSkipSignature})
			if err != nil {
				t.Fatalf("Fetch with InsecureSkipSignature: %v", err)
			}
			if d.Signer != nil {
				t.Errorf("signer = %v without a check", d.Signer)
			}
			d.Close()
		})
	}
}

func TestWhitelistBeforeAnyRequest(t *testing.T) {
	for _, ref := range []string{"evil.com/app", "example.community/app", "https://evil.com/app.aci", "https://example.com.evil.com/app.aci"} {
		t.Run(ref, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.fetcher(t).Fetch(context.Background(), ref, fetch.Options{Insecure: fetch.InsecureSkipSignature | fetch.InsecureAllowHTTP})
			if !errors.Is(err, fetch.ErrNotAllowed) {
				t.Errorf("err = %v, want ErrNotAllowed", err)
			}
			if reqs := e.srv.Requests(); len(reqs) != 0 || e.dials != 0 {
				t.Errorf("the server saw %d dials and requests %q", e.dials, reqs)
			}
		})
	}
}

func TestRedirectOutsideWhitelist(t *testing.T) {
	e := newEnv(t)
	e.srv.Redirect("/moved.aci", "https://evil.com/app.aci")
	u, _ := url.Parse("https://example.com/moved.aci")
	_, err := e.fetcher(t).FetchURL(context.Background(), u, fetch.Options{Insecure: fetch.InsecureSkipSignature})
	if !errors.Is(err, fetch.ErrNotAllowed) {
		t.Fatalf("err = %v, want ErrNotAllowed", err)
	}
	for _, r := range e.srv.Requests() {
		if strings.HasPrefix(r, "evil.com") {
			t.Errorf("request to %s", r)
		}
	}
}

func TestFetchURL(t *testing.T) {
	e := newEnv(t)
	e.srv.Serve("/app.aci", e.image)
	e.srv.Serve("/app.aci.asc", e.key.Sign(t, e.image))
	d, err := e.fetcher(t).Fetch(context.Background(), "https://example.com/app.aci", fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Signer == nil || d.Name != "example.com/app" || d.Source != "https://example.com/app.aci" {
		t.Errorf("download = %+v", d)
	}
}

func TestPlainHTTP(t *testing.T) {
	e := newEnv(t)
	e.srv.Serve("/app.aci", e.image)
	e.srv.Serve("/app.aci.asc", e.key.Sign(t, e.image))
	f := e.fetcher(t)
	_, err := f.Fetch(context.Background(), "http://example.com/app.aci", fetch.Options{})
	if !errors.Is(err, fetch.ErrInsecure) {
		t.Fatalf("err = %v, want ErrInsecure", err)
	}
	if reqs := e.srv.Requests(); len(reqs) != 0 {
		t.Fatalf("requests before the refusal: %q", reqs)
	}
	d, err := f.Fetch(context.Background(), "http://example.com/app.aci", fetch.Options{Insecure: fetch.InsecureAllowHTTP})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

func TestProxy(t *testing.T) {
	e := newEnv(t)
	proxy := fetchtest.NewProxy(t, e.srv)
	e.cfg.Proxy, _ = url.Parse(proxy.URL)
	e.cfg.DialContext = nil // only the proxy can reach example.com
	e.srv.Serve("/app.aci", e.image)
	e.srv.Serve("/app.aci.asc", e.key.Sign(t, e.image))
	f := e.fetcher(t)
	d, err := f.Fetch(context.Background(), "example.com/app:1.0.0", fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = f.Fetch(context.Background(), "http://example.com/app.aci", fetch.Options{Insecure: fetch.InsecureAllowHTTP})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	reqs := proxy.Requests()
	if !slices.Contains(reqs, "CONNECT example.com:443") || !slices.Contains(reqs, "GET http://example.com/app.aci") {
		t.Errorf("proxy saw %q", reqs)
	}
}

func TestNameAndLabelsChecked(t *testing.T) {
	e := newEnv(t)
	other, _ := acitest.Compress(acitest.Image(acitest.Manifest{Name: "example.com/other", Labels: acitest.HostLabels("version", "2.0.0")}), "gzip")
	e.serve(t, "example.com/app", "2.0.0", other, e.key)
	wrongVersion, _ := acitest.Compress(acitest.Image(acitest.Manifest{Name: "example.com/app", Labels: acitest.HostLabels("version", "9")}), "gzip")
	e.serve(t, "example.com/app", "3.0.0", wrongVersion, e.key)
	f := e.fetcher(t)
	if _, err := f.Fetch(context.Background(), "example.com/app:2.0.0", fetch.Options{}); err == nil || !strings.Contains(err.Error(), `is named "example.com/other"`) {
		t.Errorf("wrong name: err = %v", err)
	}
	if _, err := f.Fetch(context.Background(), "example.com/app:3.0.0", fetch.Options{}); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Errorf("wrong version: err = %v", err)
	}
}

func TestDownloadCap(t *testing.T) {
	e := newEnv(t)
	e.cfg.Limits = aci.Limits{MaxImageBytes: 100}
	_, err := e.fetcher(t).Fetch(context.Background(), "example.com/app:1.0.0", fetch.Options{})
	if !errors.Is(err, aci.ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}

func TestDiscoveryTemplates(t *testing.T) {
	tests := []struct {
		meta string
		ok   bool
	}{
		{`<meta name="ac-discovery" content="example.com https://example.com/images/{name}-{version}-{os}-{arch}.{ext}">`, true},
		{`<meta name="ac-discovery" content="example.com https://example.com/images/{name}-{version}-{os}-{arch}-{channel}.{ext}">`, false},
		{`<meta name="ac-discovery" content="other.com https://example.com/images/{name}-{version}-{os}-{arch}.{ext}">`, false},
		{`<meta name="ac-discovery" content="example.com file:///etc/{name}.{ext}">`, false},
		{`<meta name="ac-other" content="example.com https://example.com/images/{name}-{version}-{os}-{arch}.{ext}">`, false},
	}
	for _, tt := range tests {
		t.Run(tt.meta, func(t *testing.T) {
			e := newEnv(t)
			e.srv.SetMeta(tt.meta)
			d, err := e.fetcher(t).Fetch(context.Background(), "example.com/app:1.0.0", fetch.Options{})
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want success %v", err, tt.ok)
			}
			if err == nil {
				d.Close()
			} else if !errors.Is(err, fetch.ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestFetchFile(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "app.aci")
	if err := os.WriteFile(path, e.image, 0o644); err != nil {
		t.Fatal(err)
	}
	f := e.fetcher(t)
	if _, err := f.Fetch(context.Background(), path, fetch.Options{}); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("unsigned file: err = %v", err)
	}
	if err := os.WriteFile(path+".asc", e.key.Sign(t, e.image), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := f.Fetch(context.Background(), "file://"+path, fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Signer == nil {
		t.Error("no signer")
	}
	d.Close()
}

func TestParseName(t *testing.T) {
	name, labels, err := fetch.ParseName("example.com/app:1.2.3,channel=beta")
	if err != nil {
		t.Fatal(err)
	}
	want := types.Labels{{Name: "channel", Value: "beta"}, {Name: "version", Value: "1.2.3"}}
	if name != "example.com/app" || len(labels) != 2 {
		t.Fatalf("got %q %v, want example.com/app %v", name, labels, want)
	}
	for _, w := range want {
		if v, _ := labels.Get(w.Name.String()); v != w.Value {
			t.Errorf("label %s = %q, want %q", w.Name, v, w.Value)
		}
	}
	if _, _, err := fetch.ParseName("Not A Name"); err == nil {
		t.Error("bad name accepted")
	}
}
