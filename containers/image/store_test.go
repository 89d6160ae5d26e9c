package image_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/image"
)

// clock is a fake clock that moves one second a call.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func openStore(t *testing.T, dir string, opts image.Options) *image.Store {
	t.Helper()
	if opts.Now == nil {
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		opts.Now = c.now
	}
	s, err := image.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustImport(t *testing.T, s *image.Store, tarBytes []byte) *image.Image {
	t.Helper()
	img, err := s.Import(context.Background(), bytes.NewReader(tarBytes), image.ImportOptions{})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return img
}

func app(name, version string, es ...acitest.Entry) []byte {
	return acitest.Image(acitest.Manifest{Name: name, Labels: acitest.HostLabels("version", version)}, es...)
}

func TestImportCompressions(t *testing.T) {
	tarBytes := app("example.com/app", "1.0.0", acitest.RootFS("bin/", "bin/app", "etc/", "etc/app.conf")...)
	sum := sha512.Sum512(tarBytes) // computed here, apart from the store
	wantID := "sha512-" + hex.EncodeToString(sum[:])
	s := openStore(t, t.TempDir(), image.Options{})
	for _, c := range []string{"none", "gzip", "bzip2", "xz"} {
		t.Run(c, func(t *testing.T) {
			data, err := acitest.Compress(tarBytes, c)
			if err != nil {
				t.Skipf("cannot make a %s archive here: %v", c, err)
			}
			img, err := s.Import(context.Background(), bytes.NewReader(data), image.ImportOptions{Source: "test." + c})
			if err != nil {
				t.Fatal(err)
			}
			if img.ID != wantID {
				t.Errorf("ID = %s, want %s", img.ID, wantID)
			}
			if img.Size != int64(len(tarBytes)) {
				t.Errorf("Size = %d, want %d", img.Size, len(tarBytes))
			}
			b, err := os.ReadFile(filepath.Join(img.RootFS, "etc/app.conf"))
			if err != nil || string(b) != "etc/app.conf" {
				t.Errorf("etc/app.conf = %q, %v", b, err)
			}
		})
	}
	list := s.List()
	if len(list) != 1 || list[0].ID != wantID || list[0].ImportedAt.IsZero() {
		t.Fatalf("List = %+v, want the one image", list)
	}
	for _, id := range []string{wantID, wantID[:20]} {
		if img, err := s.Get(id); err != nil || img.ID != wantID {
			t.Errorf("Get(%s) = %v, %v", id, img, err)
		}
	}
	if _, err := s.Get("sha512-0000000000"); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("Get(unknown) err = %v", err)
	}
}

// snapshot lists every path in a directory with its type and size.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		size := fi.Size()
		if d.IsDir() {
			size = 0
		}
		lines = append(lines, rel+" "+fi.Mode().String()+" "+itoa(size))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestHostileImagesLeaveStoreUnchanged imports every hostile image of
// THREATS.md section A: each is refused with a clear error, and the
// store on disk, and outside it, is as it was.
func TestHostileImagesLeaveStoreUnchanged(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "store")
	for _, h := range acitest.HostileImages(outside) {
		t.Run(h.Name, func(t *testing.T) {
			s := openStore(t, dir, image.Options{Limits: h.Limits})
			defer s.Close()
			mustImport(t, s, app("example.com/good", "1"))
			before := snapshot(t, base)
			list := s.List()
			_, err := s.Import(context.Background(), bytes.NewReader(h.Archive), image.ImportOptions{})
			if problem := h.Refused(err); problem != "" {
				t.Error(problem)
			}
			if after := snapshot(t, base); after != before {
				t.Errorf("the disk changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if got := s.List(); len(got) != len(list) {
				t.Errorf("store lists %d images, had %d", len(got), len(list))
			}
		})
	}
}

func TestExpectedID(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	a := app("example.com/a", "1")
	_, err := s.Import(context.Background(), bytes.NewReader(a), image.ImportOptions{ExpectedID: acitest.ID([]byte("other"))})
	if !errors.Is(err, image.ErrMismatch) {
		t.Fatalf("err = %v, want ErrMismatch", err)
	}
	if n := len(s.List()); n != 0 {
		t.Errorf("%d images stored", n)
	}
	if _, err := s.Import(context.Background(), bytes.NewReader(a), image.ImportOptions{ExpectedID: acitest.ID(a)}); err != nil {
		t.Errorf("matching ID: %v", err)
	}
}

// cancelAfter cancels a context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	if len(p) > 512 {
		p = p[:512]
	}
	k, err := c.r.Read(p)
	c.n -= k
	return k, err
}

func TestInterruptedImport(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, image.Options{})
	big := app("example.com/big", "1", acitest.File("rootfs/blob", strings.Repeat("x", 1<<20)))
	ctx, cancel := context.WithCancel(context.Background())
	_, err := s.Import(ctx, &cancelAfter{r: bytes.NewReader(big), n: 4096, cancel: cancel}, image.ImportOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ holds %d entries after a cancelled import", len(ents))
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "images")); len(ents) != 0 {
		t.Errorf("images/ holds %d entries", len(ents))
	}
	// A killed process leaves its staging directory; Open removes it.
	s.Close()
	stray := filepath.Join(dir, "tmp", "import-123", "rootfs", "x")
	if err := os.MkdirAll(stray, 0o755); err != nil {
		t.Fatal(err)
	}
	var logged []string
	openStore(t, dir, image.Options{Logf: func(f string, a ...any) { logged = append(logged, f) }})
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("Open left %d entries in tmp/", len(ents))
	}
	if len(logged) == 0 {
		t.Error("the cleanup was not reported")
	}
}

func TestReopenAndLock(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, image.Options{})
	img := mustImport(t, s, app("example.com/a", "1"))
	if _, err := image.Open(dir, image.Options{}); !errors.Is(err, image.ErrLocked) {
		t.Errorf("second Open: err = %v, want ErrLocked", err)
	}
	s.Close()
	// A broken entry is dropped, not fatal.
	broken := filepath.Join(dir, "images", "sha512-"+strings.Repeat("0", 128))
	if err := os.MkdirAll(broken, 0o700); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, image.Options{})
	got, err := s.Get(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != img.Size || !got.ImportedAt.Equal(img.ImportedAt) || got.Name() != "example.com/a" {
		t.Errorf("after reopening: %+v, want %+v", got, img)
	}
	if len(s.List()) != 1 {
		t.Errorf("List = %d images, want 1", len(s.List()))
	}
	if _, err := os.Stat(broken); !os.IsNotExist(err) {
		t.Errorf("broken entry still there: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("store mode = %v, want 0700", fi.Mode().Perm())
	}
}

func labels(kv ...string) types.Labels {
	var ls types.Labels
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, types.Label{Name: types.ACIdentifier(kv[i]), Value: kv[i+1]})
	}
	return ls
}

func TestFind(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	v1 := mustImport(t, s, app("example.com/app", "1.0.0"))
	v2 := mustImport(t, s, acitest.Image(acitest.Manifest{Name: "example.com/app", Labels: acitest.HostLabels("version", "2.0.0", "channel", "beta")}))
	noarch := mustImport(t, s, acitest.Image(acitest.Manifest{Name: "example.com/scripts", Labels: []string{"version", "1"}}))
	tests := []struct {
		name   string
		labels types.Labels
		want   *image.Image
	}{
		{"example.com/app", nil, v2},
		{"example.com/app", labels("version", "latest"), v2},
		{"example.com/app", labels("version", "1.0.0"), v1},
		{"example.com/app", labels("channel", "beta"), v2},
		{"example.com/app", labels("channel", "stable"), nil},
		{"example.com/app", labels("version", "3"), nil},
		{"example.com/scripts", labels("os", "linux", "arch", "amd64"), noarch},
		{"example.com/none", nil, nil},
	}
	for _, tt := range tests {
		got, err := s.Find(tt.name, tt.labels)
		if tt.want == nil {
			if !errors.Is(err, image.ErrNotFound) {
				t.Errorf("Find(%s, %v) = %v, %v; want ErrNotFound", tt.name, tt.labels, got, err)
			}
			continue
		}
		if err != nil || got.ID != tt.want.ID {
			t.Errorf("Find(%s, %v) = %v, %v; want %s", tt.name, tt.labels, got, err, tt.want.ID)
		}
	}
}

func TestConcurrentImports(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	images := [][]byte{app("example.com/a", "1"), app("example.com/b", "1"), app("example.com/c", "1")}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := acitest.ID(images[i%3])
			img, err := s.Import(context.Background(), bytes.NewReader(images[i%3]), image.ImportOptions{})
			if err == nil && img.ID != want {
				err = errors.New("wrong ID " + img.ID)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := len(s.List()); n != 3 {
		t.Errorf("%d images, want 3", n)
	}
}

func TestImportDir(t *testing.T) {
	dir := t.TempDir()
	a, _ := acitest.Compress(app("example.com/a", "1"), "gzip")
	b, _ := acitest.Compress(app("example.com/b", "1"), "xz")
	for name, data := range map[string][]byte{"a.aci": a, "b.aci": b, "bad.aci": []byte("junk"), "notes.txt": []byte("x")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openStore(t, t.TempDir(), image.Options{})
	imgs, err := s.ImportDir(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "bad.aci") {
		t.Errorf("err = %v, want one about bad.aci", err)
	}
	if len(imgs) != 2 || len(s.List()) != 2 {
		t.Errorf("imported %d, store has %d; want 2", len(imgs), len(s.List()))
	}
}

func TestRemoveAndGC(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var inUse []string
	s := openStore(t, t.TempDir(), image.Options{
		Now:   c.now,
		InUse: func(context.Context) ([]string, error) { return inUse, nil },
	})
	base := mustImport(t, s, app("example.com/base", "1", acitest.RootFS("etc/", "etc/base")...))
	top := mustImport(t, s, acitest.Image(acitest.Manifest{Name: "example.com/top", Labels: acitest.HostLabels("version", "1"), Dependencies: []acitest.Dependency{{Name: "example.com/base"}}}))
	lone := mustImport(t, s, app("example.com/lone", "1"))
	inUse = []string{top.ID}
	if _, err := s.Tree(context.Background(), lone.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tree(context.Background(), top.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{top.ID, base.ID} {
		if err := s.Remove(context.Background(), id); !errors.Is(err, image.ErrInUse) {
			t.Errorf("Remove(%s) err = %v, want ErrInUse", id, err)
		}
	}
	// Within the grace period no image goes; the tree of an image no
	// pod uses is only a cache, and goes.
	res, err := s.GC(context.Background(), image.GCOptions{GracePeriod: time.Hour})
	if err != nil || len(res.Images) != 0 || res.Trees != 1 {
		t.Fatalf("GC within grace = %+v, %v; want lone's tree only", res, err)
	}
	c.mu.Lock()
	c.t = c.t.Add(2 * time.Hour)
	c.mu.Unlock()
	res, err = s.GC(context.Background(), image.GCOptions{GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Images[0] != lone.ID || res.Trees != 0 || res.Freed != lone.Size {
		t.Errorf("GC = %+v, want only %s", res, lone.ID)
	}
	if _, err := s.Get(lone.ID); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("lone still there: %v", err)
	}
	inUse = nil
	if err := s.Remove(context.Background(), base.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layers(context.Background(), top.ID); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("Layers of top without base: %v", err)
	}
	res, err = s.GC(context.Background(), image.GCOptions{})
	if err != nil || len(res.Images) != 1 {
		t.Errorf("GC = %+v, %v; want top removed", res, err)
	}
	for _, sub := range []string{"images", "trees", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(s.Dir(), sub)); len(ents) != 0 {
			t.Errorf("%s/ holds %d entries after everything was removed", sub, len(ents))
		}
	}
}

func TestPlatformChecked(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	os, arch, _ := aci.HostPlatform()
	_, err := s.Import(context.Background(), bytes.NewReader(acitest.Image(acitest.Manifest{Name: "example.com/x", Labels: []string{"os", os, "arch", otherArch(arch)}})), image.ImportOptions{})
	var pe *aci.PlatformError
	if !errors.As(err, &pe) {
		t.Errorf("err = %v, want a PlatformError", err)
	}
}

func otherArch(arch string) string {
	if arch == "s390x" {
		return "amd64"
	}
	return "s390x"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
