package buildroot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/aci"
)

// needApt skips when this machine cannot download Debian packages.
func needApt(t *testing.T, pkg string) {
	t.Helper()
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("no apt-get: buildroot needs Debian's package tools")
	}
	if _, err := candidate(context.Background(), pkg); err != nil {
		t.Skipf("apt has no %s: %v", pkg, err)
	}
}

// cacheDir is shared by the tests of one run, so packages download once.
func cacheDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "kurma-buildroot-test-cache")
	if os.Geteuid() != 0 {
		dir += "-" + strings.TrimSpace(os.Getenv("USER"))
	}
	return dir
}

func assemble(t *testing.T, r *Recipe) string {
	t.Helper()
	pkgs, err := FetchPackages(context.Background(), cacheDir(t), r.Packages)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "tree")
	if _, err := Assemble(context.Background(), r, pkgs, "..", dest); err != nil {
		t.Fatal(err)
	}
	return dest
}

// TestE2fsprogsFormatsAnImage assembles the initrd's ext4 tools from
// Debian's packages and runs the copied mke2fs through the copied dynamic
// linker and libraries only (no host library is used), then checks the
// result with the copied e2fsck.
func TestE2fsprogsFormatsAnImage(t *testing.T) {
	needApt(t, "e2fsprogs")
	r, err := LoadRecipe("e2fsprogs")
	if err != nil {
		t.Fatal(err)
	}
	tree := assemble(t, r)
	for _, p := range []string{"sbin/mke2fs", "sbin/resize2fs", "sbin/e2fsck", "etc/mke2fs.conf", "lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libext2fs.so.2", "lib/x86_64-linux-gnu/libc.so.6"} {
		if _, err := os.Stat(filepath.Join(tree, p)); err != nil {
			t.Errorf("tree lacks %s: %v", p, err)
		}
	}
	if link, _ := os.Readlink(filepath.Join(tree, "sbin/mkfs.ext4")); link != "mke2fs" {
		t.Errorf("mkfs.ext4 -> %q, want mke2fs", link)
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	run := func(bin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(tree, "lib64/ld-linux-x86-64.so.2"),
			append([]string{"--library-path", filepath.Join(tree, "lib/x86_64-linux-gnu"), filepath.Join(tree, bin)}, args...)...)
		cmd.Env = []string{"MKE2FS_CONFIG=" + filepath.Join(tree, "etc/mke2fs.conf")}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
		}
		return string(out)
	}
	run("sbin/mke2fs", "-q", "-F", "-t", "ext4", "-L", "kurmatest", img)
	if out := run("sbin/e2fsck", "-fn", img); !strings.Contains(out, "kurmatest") && !strings.Contains(out, "clean") && !strings.Contains(out, "files") {
		t.Errorf("e2fsck of the new filesystem said:\n%s", out)
	}
}

func TestMissingLibraryNamesThePackage(t *testing.T) {
	needApt(t, "e2fsprogs")
	r, err := ParseRecipe("broken", []byte("packages: [e2fsprogs, libc6]\nbinaries: [/sbin/mke2fs]\n"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := FetchPackages(context.Background(), cacheDir(t), r.Packages)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Assemble(context.Background(), r, pkgs, "..", filepath.Join(t.TempDir(), "tree"))
	if err == nil || !strings.Contains(err.Error(), "/sbin/mke2fs needs libext2fs.so.2, which none of its packages has") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "add the package libext2fs2") {
		t.Errorf("the error does not name the package: %v", err)
	}
}

// pack assembles the recipe's tree in a new place and packs it as an
// ACI of version 1.0.
func pack(t *testing.T, r *Recipe) []byte {
	t.Helper()
	tree := assemble(t, r)
	pkgs, err := FetchPackages(context.Background(), cacheDir(t), r.Packages)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Manifest(r.Image, "1.0", pkgs)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := PackACI(tree, m, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestImageIsReproducible packs a busybox image twice, from trees
// assembled at different times in different places, and compares the
// bytes; the image must also import as a valid ACI.
func TestImageIsReproducible(t *testing.T) {
	needApt(t, "busybox-static")
	r, err := ParseRecipe("bb", []byte(`
packages: [busybox-static]
binaries: [/bin/busybox]
symlinks: {/bin/sh: busybox}
dirs: [/proc, /tmp]
image:
  name: kurma.test/busybox
  labels: {channel: test}
  exec: [/bin/sh, -c, "echo hi"]
  environment: {B: "2", A: "1"}
  mountPoints: [{name: data, path: /data}]
`))
	if err != nil {
		t.Fatal(err)
	}
	first := pack(t, r)
	time.Sleep(1100 * time.Millisecond) // every file time differs now
	if second := pack(t, r); !bytes.Equal(first, second) {
		t.Fatal("two packs of the same recipe differ")
	}
	m, err := aci.ReadManifest(context.Background(), bytes.NewReader(first), aci.Limits{})
	if err != nil {
		t.Fatalf("the image is not a valid ACI: %v", err)
	}
	if m.Name != "kurma.test/busybox" || m.App == nil || !reflect.DeepEqual([]string(m.App.Exec), []string{"/bin/sh", "-c", "echo hi"}) {
		t.Errorf("manifest = %+v", m)
	}
	if v, ok := m.Labels.Get("version"); !ok || v != "1.0" {
		t.Errorf("version label = %q", v)
	}
	if v, ok := m.Annotations.Get("debian-package/busybox-static"); !ok || v == "" {
		t.Errorf("no package version annotation: %v", m.Annotations)
	}
}

func TestParseRecipe(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "packges: [x]\n", "field packges not found"},
		{"relative path", "packages: [x]\nbinaries: [sbin/mke2fs]\n", `"sbin/mke2fs" is not an absolute path`},
		{"no packages", "binaries: [/bin/x]\n", "names none"},
	} {
		if _, err := ParseRecipe(tc.name, []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadRecipe("nonesuch"); !errors.Is(err, ErrUnknownRecipe) {
		t.Errorf("LoadRecipe(nonesuch): %v", err)
	}
	for _, name := range RecipeNames() {
		if _, err := LoadRecipe(name); err != nil {
			t.Errorf("built-in recipe %s: %v", name, err)
		}
	}
}

func TestUsrMerged(t *testing.T) {
	for in, want := range map[string][]string{
		"/lib/x86_64-linux-gnu/libc.so.6": {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		"/usr/sbin/mke2fs":                {"/usr/sbin/mke2fs", "/sbin/mke2fs"},
		"/etc/mke2fs.conf":                {"/etc/mke2fs.conf"},
		"/library/x":                      {"/library/x"},
	} {
		if got := usrMerged(in); !reflect.DeepEqual(got, want) {
			t.Errorf("usrMerged(%s) = %v, want %v", in, got, want)
		}
	}
}

// TestBusyboxImage assembles the shipped busybox image: its applets are
// links to busybox, /tmp is sticky and world-writable, and the manifest
// names kurma/busybox.
func TestBusyboxImage(t *testing.T) {
	needApt(t, "busybox-static")
	r, err := LoadRecipe("busybox")
	if err != nil {
		t.Fatal(err)
	}
	tree := assemble(t, r)
	for _, applet := range []string{"sh", "sleep", "cat", "echo"} {
		if link, _ := os.Readlink(filepath.Join(tree, "bin", applet)); link != "busybox" {
			t.Errorf("/bin/%s -> %q, want busybox", applet, link)
		}
	}
	if fi, err := os.Stat(filepath.Join(tree, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("/tmp: %v %v, want 1777", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(filepath.Join(tree, "etc/passwd")); !strings.HasPrefix(string(data), "root:x:0:0:") {
		t.Errorf("/etc/passwd: %q", data)
	}
	m, err := Manifest(r.Image, "1", nil)
	if err != nil || m.Name != "kurma/busybox" {
		t.Errorf("manifest: %v %v", m, err)
	}
}

// TestShippedImagesAreReproducible assembles and packs each image the OS
// ships (Debian packages and Go programs alike) twice, in different
// places at different times: the bytes are the same.
func TestShippedImagesAreReproducible(t *testing.T) {
	needApt(t, "busybox-static")
	if testing.Short() {
		t.Skip("builds the images' Go programs: not in -short")
	}
	for _, name := range RecipeNames() {
		r, err := LoadRecipe(name)
		if err != nil {
			t.Fatal(err)
		}
		if r.Image == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			first := pack(t, r)
			time.Sleep(1100 * time.Millisecond) // every file time differs now
			if second := pack(t, r); !bytes.Equal(first, second) {
				t.Fatalf("two builds of %s differ", name)
			}
			if _, err := aci.ReadManifest(context.Background(), bytes.NewReader(first), aci.Limits{}); err != nil {
				t.Fatalf("the image is not a valid ACI: %v", err)
			}
		})
	}
}
