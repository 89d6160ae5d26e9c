package image_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/image"
)

func withDeps(name string, deps []string, es ...acitest.Entry) []byte {
	m := acitest.Manifest{Name: name, Labels: acitest.HostLabels("version", "1")}
	for _, d := range deps {
		m.Dependencies = append(m.Dependencies, acitest.Dependency{Name: d})
	}
	return acitest.Image(m, es...)
}

// tree describes a directory: each path with its type, and a file's
// content or a symlink's target.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := rel + " " + d.Type().String()
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case d.Type().IsRegular():
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// layerNames lists the layers of an image by short name, lowest first.
func layerNames(t *testing.T, s *image.Store, id string) string {
	t.Helper()
	layers, err := s.Layers(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range layers {
		names = append(names, strings.TrimPrefix(l.Image.Name(), "example.com/"))
	}
	return strings.Join(names, ",")
}

func file(name, body string) acitest.Entry { return acitest.File("rootfs/"+name, body) }

func TestRenderOrder(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	mustImport(t, s, withDeps("example.com/b", nil, file("who", "b"), file("bd", "b"), file("bc", "b"), file("b", "b")))
	mustImport(t, s, withDeps("example.com/d", nil, file("who", "d"), file("bd", "d"), file("d", "d")))
	mustImport(t, s, withDeps("example.com/c", []string{"example.com/d"}, file("who", "c"), file("bc", "c")))
	a := mustImport(t, s, withDeps("example.com/a", []string{"example.com/b", "example.com/c"}, file("who", "a")))

	if got := layerNames(t, s, a.ID); got != "b,d,c,a" {
		t.Errorf("layers = %s, want b,d,c,a (ace.md: the order of override is B, D, C, A)", got)
	}
	dest := filepath.Join(t.TempDir(), "rootfs")
	if err := s.Render(context.Background(), a.ID, dest); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"who": "a", "bd": "d", "bc": "c", "b": "b", "d": "d"} {
		if b, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	if err := s.Render(context.Background(), a.ID, dest); err == nil {
		t.Error("Render into a non-empty directory succeeded")
	}
}

func TestDiamond(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	mustImport(t, s, withDeps("example.com/d", nil))
	mustImport(t, s, withDeps("example.com/b", []string{"example.com/d"}))
	mustImport(t, s, withDeps("example.com/c", []string{"example.com/d"}))
	a := mustImport(t, s, withDeps("example.com/a", []string{"example.com/b", "example.com/c"}))
	if got := layerNames(t, s, a.ID); got != "d,b,d,c,a" {
		t.Errorf("layers = %s, want d,b,d,c,a", got)
	}
	lowers, err := s.Lowers(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(lowers) != 4 {
		t.Errorf("lowers = %q, want 4 directories (d once)", lowers)
	}
}

func TestDependencyErrors(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	x := mustImport(t, s, withDeps("example.com/x", []string{"example.com/y"}))
	mustImport(t, s, withDeps("example.com/y", []string{"example.com/x"}))
	if _, err := s.Layers(context.Background(), x.ID); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: err = %v", err)
	}
	other := mustImport(t, s, withDeps("example.com/other", nil))
	byID := mustImport(t, s, acitest.Image(acitest.Manifest{Name: "example.com/byid", Dependencies: []acitest.Dependency{{Name: "example.com/named", ImageID: other.ID}}}))
	if _, err := s.Layers(context.Background(), byID.ID); !errors.Is(err, image.ErrMismatch) {
		t.Errorf("imageID of another name: err = %v, want ErrMismatch", err)
	}
	missing := mustImport(t, s, withDeps("example.com/missing", []string{"example.com/nowhere"}))
	if err := s.Render(context.Background(), missing.ID, t.TempDir()); !errors.Is(err, image.ErrNotFound) {
		t.Errorf("missing dependency: err = %v, want ErrNotFound", err)
	}
}

func TestPathWhitelist(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	mustImport(t, s, withDeps("example.com/base", nil, acitest.RootFS("etc/", "etc/keep", "etc/drop", "bin/", "bin/app", "usr/", "usr/lib/", "usr/lib/x")...))
	m := acitest.Manifest{Name: "example.com/app", Dependencies: []acitest.Dependency{{Name: "example.com/base"}}, PathWhitelist: []string{"/etc/keep", "/bin/app", "/bin/own"}}
	a := mustImport(t, s, acitest.Image(m, acitest.RootFS("bin/", "bin/own", "bin/extra")...))
	dest := t.TempDir()
	if err := s.Render(context.Background(), a.ID, dest); err != nil {
		t.Fatal(err)
	}
	want := ". d---------\nbin d---------\nbin/app ---------- bin/app\nbin/own ---------- bin/own\netc d---------\netc/keep ---------- etc/keep"
	if got := tree(t, dest); got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
	lowers, err := s.Lowers(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(lowers) != 1 || !strings.HasPrefix(lowers[0], filepath.Join(s.Dir(), "trees")) {
		t.Fatalf("lowers = %q, want one rendered tree", lowers)
	}
	if got := tree(t, lowers[0]); got != want {
		t.Errorf("tree:\n%s\nwant:\n%s", got, want)
	}
	again, err := s.Tree(context.Background(), a.ID)
	if err != nil || again != lowers[0] {
		t.Errorf("Tree again = %q, %v; want the same %q", again, err, lowers[0])
	}
}

// shadowing is THREATS.md A.6 across layers: a directory shadowed by a
// symlink and a symlink shadowed by a directory.
func shadowing(t *testing.T, s *image.Store) string {
	t.Helper()
	mustImport(t, s, withDeps("example.com/lower", nil,
		acitest.Dir("rootfs/var"), acitest.Dir("rootfs/var/www"), file("var/www/index", "lower"),
		acitest.Dir("rootfs/app"),
		acitest.Symlink("rootfs/srv", "/app"),
		acitest.Dir("rootfs/etc"), file("etc/conf", "lower")))
	top := mustImport(t, s, withDeps("example.com/upper", []string{"example.com/lower"},
		acitest.Dir("rootfs/var"), acitest.Symlink("rootfs/var/www", "/app"),
		acitest.Dir("rootfs/srv"), file("srv/index", "upper"),
		acitest.Symlink("rootfs/etc", "/app")))
	return top.ID
}

func TestShadowingAcrossLayers(t *testing.T) {
	s := openStore(t, t.TempDir(), image.Options{})
	id := shadowing(t, s)
	dest := t.TempDir()
	if err := s.Render(context.Background(), id, dest); err != nil {
		t.Fatal(err)
	}
	want := ". d---------\napp d---------\netc L--------- -> /app\nsrv d---------\nsrv/index ---------- upper\nvar d---------\nvar/www L--------- -> /app"
	if got := tree(t, dest); got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
}

// TestOverlayMatchesCopy mounts the layers Lowers gives with overlayfs
// and compares the view with the copy Render makes: the same rules.
func TestOverlayMatchesCopy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	if !image.OverlaySupported() {
		t.Skip("the kernel has no overlayfs")
	}
	s := openStore(t, t.TempDir(), image.Options{})
	for _, id := range []string{shadowing(t, s), renderOrderImage(t, s)} {
		copyDir := t.TempDir()
		if err := s.Render(context.Background(), id, copyDir); err != nil {
			t.Fatal(err)
		}
		lowers, err := s.Lowers(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(lowers) < 2 {
			t.Fatalf("lowers = %q, want stacked layers", lowers)
		}
		work := t.TempDir()
		upper, wk, target := filepath.Join(work, "upper"), filepath.Join(work, "work"), filepath.Join(work, "mnt")
		for _, d := range []string{upper, wk, target} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := image.MountOverlay(target, lowers, upper, wk, unix.MS_NODEV|unix.MS_NOSUID); err != nil {
			t.Fatal(err)
		}
		got := tree(t, target)
		if err := unix.Unmount(target, 0); err != nil {
			t.Fatal(err)
		}
		if want := tree(t, copyDir); got != want {
			t.Errorf("overlay:\n%s\ncopy:\n%s", got, want)
		}
	}
}

func renderOrderImage(t *testing.T, s *image.Store) string {
	mustImport(t, s, withDeps("example.com/o-b", nil, file("who", "b"), file("bd", "b")))
	mustImport(t, s, withDeps("example.com/o-d", nil, file("who", "d"), file("bd", "d")))
	mustImport(t, s, withDeps("example.com/o-c", []string{"example.com/o-d"}, file("who", "c")))
	return mustImport(t, s, withDeps("example.com/o-a", []string{"example.com/o-b", "example.com/o-c"}, acitest.Dir("rootfs/dir"), file("dir/x", "a"))).ID
}
