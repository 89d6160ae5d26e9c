package image_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/fetch"
	"github.com/kurmaos/kurma/containers/fetch/fetchtest"
	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/containers/trust"
)

type remote struct {
	srv    *fetchtest.Server
	key    *fetchtest.Key
	os, ar string
}

func (r *remote) serve(t *testing.T, name string, tarBytes []byte) {
	t.Helper()
	data, err := acitest.Compress(tarBytes, "gzip")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "latest"} {
		p := fetchtest.ImagePath(name, v, r.os, r.ar, "aci")
		r.srv.Serve(p, data)
		r.srv.Serve(p+".asc", r.key.Sign(t, data))
	}
}

func fetchingStore(t *testing.T) (*image.Store, *remote) {
	t.Helper()
	r := &remote{srv: fetchtest.NewServer(t), key: fetchtest.NewKey(t, "signer")}
	var err error
	if r.os, r.ar, err = aci.HostPlatform(); err != nil {
		t.Fatal(err)
	}
	ts, err := trust.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Add("example.com", r.key.Public(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := fetch.New(fetch.Config{
		RootCAs:     r.srv.RootCAs(),
		Allow:       fetch.Whitelist{Names: []string{"example.com"}},
		Trust:       ts,
		TempDir:     dir,
		DialContext: r.srv.Dial,
	})
	if err != nil {
		t.Fatal(err)
	}
	return openStore(t, dir, image.Options{Fetcher: f}), r
}

func TestFetchWithDependencies(t *testing.T) {
	s, r := fetchingStore(t)
	base := withDeps("example.com/base", nil, file("etc/os-release", "base"))
	r.serve(t, "example.com/base", base)
	mid := acitest.Image(acitest.Manifest{Name: "example.com/mid", Labels: acitest.HostLabels("version", "1"),
		Dependencies: []acitest.Dependency{{Name: "example.com/base", ImageID: acitest.ID(base), Labels: []string{"version", "1"}}}})
	r.serve(t, "example.com/mid", mid)
	r.serve(t, "example.com/app", withDeps("example.com/app", []string{"example.com/mid"}, file("app", "app")))

	img, err := s.Fetch(context.Background(), "example.com/app", fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.List()) != 3 {
		t.Fatalf("store has %d images, want app, mid and base", len(s.List()))
	}
	if _, err := s.Get(acitest.ID(base)); err != nil {
		t.Errorf("base: %v", err)
	}
	layers, err := s.Layers(context.Background(), img.ID)
	if err != nil || len(layers) != 3 {
		t.Errorf("layers = %d, %v", len(layers), err)
	}
}

func TestFetchDependencyIDMismatch(t *testing.T) {
	s, r := fetchingStore(t)
	r.serve(t, "example.com/base", withDeps("example.com/base", nil, file("x", "tampered")))
	r.serve(t, "example.com/app", acitest.Image(acitest.Manifest{Name: "example.com/app", Labels: acitest.HostLabels("version", "1"),
		Dependencies: []acitest.Dependency{{Name: "example.com/base", ImageID: acitest.ID(withDeps("example.com/base", nil, file("x", "original")))}}}))
	_, err := s.Fetch(context.Background(), "example.com/app:1", fetch.Options{})
	if !errors.Is(err, image.ErrMismatch) {
		t.Fatalf("err = %v, want ErrMismatch", err)
	}
	for _, img := range s.List() {
		if img.Name() == "example.com/base" {
			t.Errorf("the mismatched dependency was stored")
		}
	}
}

func TestFetchDependencyNotWhitelisted(t *testing.T) {
	s, r := fetchingStore(t)
	r.serve(t, "example.com/app", withDeps("example.com/app", []string{"evil.com/base"}))
	_, err := s.Fetch(context.Background(), "example.com/app", fetch.Options{})
	if !errors.Is(err, fetch.ErrNotAllowed) {
		t.Fatalf("err = %v, want ErrNotAllowed", err)
	}
	for _, req := range r.srv.Requests() {
		if len(req) >= 8 && req[:8] == "evil.com" {
			t.Errorf("request made for the refused dependency: %s", req)
		}
	}
}

func TestFetchNotConfigured(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	if _, err := s.Fetch(context.Background(), "example.com/app", fetch.Options{}); !errors.Is(err, image.ErrNoFetcher) {
		t.Errorf("err = %v, want ErrNoFetcher", err)
	}
}
