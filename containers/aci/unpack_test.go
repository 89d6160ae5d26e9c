package aci_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/rootfs"
)

func sampleImage() []byte {
	setuid := acitest.File("rootfs/bin/su", "#!/bin/true\n")
	setuid.Mode = 0o4755
	setuid.Uid, setuid.Gid = 0, 0
	owned := acitest.File("rootfs/home/user/.profile", "export A=1\n")
	owned.Uid, owned.Gid = 1000, 1001
	ro := acitest.Dir("rootfs/ro")
	ro.Mode = 0o555
	es := []acitest.Entry{
		acitest.Dir("rootfs/bin"),
		acitest.File("rootfs/bin/busybox", strings.Repeat("ELF", 1000)),
		setuid,
		acitest.Symlink("rootfs/bin/sh", "busybox"),
		acitest.Symlink("rootfs/bin/abs", "/bin/busybox"),
		acitest.Hardlink("rootfs/bin/ls", "rootfs/bin/busybox"),
		acitest.Dir("rootfs/home"),
		acitest.Dir("rootfs/home/user"),
		owned,
		ro,
		acitest.File("rootfs/ro/file", "read only dir"),
		acitest.File("rootfs/implicit/parent/file", "no dir entries"),
	}
	return acitest.Image(acitest.Manifest{Name: "example.com/sample", Labels: acitest.HostLabels("version", "1.0.0"), App: true}, es...)
}

func TestUnpackCompressions(t *testing.T) {
	tarBytes := sampleImage()
	sum := sha512.Sum512(tarBytes)
	wantID := "sha512-" + hex.EncodeToString(sum[:])
	for _, c := range []string{"none", "gzip", "bzip2", "xz"} {
		t.Run(c, func(t *testing.T) {
			data, err := acitest.Compress(tarBytes, c)
			if err != nil {
				t.Skipf("cannot make a %s archive here: %v", c, err)
			}
			// No external decompressor may run (THREATS.md A.12): with an
			// empty PATH, xz and bzip2 programs cannot be found.
			t.Setenv("PATH", t.TempDir())
			dir := t.TempDir()
			res, err := aci.Unpack(context.Background(), bytes.NewReader(data), dir, aci.Options{Check: aci.HostCheck})
			if err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			if res.ID != wantID {
				t.Errorf("ID = %s, want %s", res.ID, wantID)
			}
			if string(res.Compression) != c {
				t.Errorf("Compression = %s, want %s", res.Compression, c)
			}
			if res.Size != int64(len(tarBytes)) {
				t.Errorf("Size = %d, want %d", res.Size, len(tarBytes))
			}
			if got := res.Manifest.Name.String(); got != "example.com/sample" {
				t.Errorf("manifest name = %q", got)
			}
			checkSample(t, dir)
		})
	}
}

func checkSample(t *testing.T, dir string) {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("read %s: %v", name, err)
		}
		return string(b)
	}
	if got := read("bin/busybox"); got != strings.Repeat("ELF", 1000) {
		t.Errorf("bin/busybox has %d bytes", len(got))
	}
	if got, _ := os.Readlink(filepath.Join(dir, "bin/sh")); got != "busybox" {
		t.Errorf("bin/sh -> %q, want busybox", got)
	}
	if got, _ := os.Readlink(filepath.Join(dir, "bin/abs")); got != "/bin/busybox" {
		t.Errorf("bin/abs -> %q, want /bin/busybox", got)
	}
	a, _ := os.Stat(filepath.Join(dir, "bin/busybox"))
	b, _ := os.Stat(filepath.Join(dir, "bin/ls"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Errorf("bin/ls is not a hard link of bin/busybox")
	}
	if got := read("implicit/parent/file"); got != "no dir entries" {
		t.Errorf("implicit/parent/file = %q", got)
	}
	if !a.ModTime().Equal(acitest.Epoch) {
		t.Errorf("mtime = %v, want %v", a.ModTime(), acitest.Epoch)
	}
	su, err := os.Stat(filepath.Join(dir, "bin/su"))
	if err != nil {
		t.Fatal(err)
	}
	prof, err := os.Stat(filepath.Join(dir, "home/user/.profile"))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := os.Stat(filepath.Join(dir, "ro"))
	if err != nil {
		t.Fatal(err)
	}
	st := prof.Sys().(*syscall.Stat_t)
	if os.Geteuid() == 0 {
		if su.Mode()&fs.ModeSetuid == 0 {
			t.Errorf("bin/su lost its setuid bit: %v", su.Mode())
		}
		if st.Uid != 1000 || st.Gid != 1001 {
			t.Errorf(".profile owner = %d:%d, want 1000:1001", st.Uid, st.Gid)
		}
		if ro.Mode().Perm() != 0o555 {
			t.Errorf("ro mode = %v, want 0555", ro.Mode().Perm())
		}
	} else {
		if su.Mode()&fs.ModeSetuid != 0 {
			t.Errorf("bin/su kept setuid without root: %v", su.Mode())
		}
		if int(st.Uid) != os.Geteuid() {
			t.Errorf(".profile owner = %d, want the caller %d", st.Uid, os.Geteuid())
		}
		if ro.Mode().Perm() != 0o755 {
			t.Errorf("ro mode = %v, want 0755 (0555 plus the owner's rwx)", ro.Mode().Perm())
		}
	}
}

// TestUnpackUnprivileged runs the unprivileged path even as root.
func TestUnpackUnprivileged(t *testing.T) {
	dir := t.TempDir()
	_, err := aci.Unpack(context.Background(), bytes.NewReader(sampleImage()), dir, aci.Options{Root: rootfs.Options{Unprivileged: true}})
	if err != nil {
		t.Fatal(err)
	}
	su, err := os.Stat(filepath.Join(dir, "bin/su"))
	if err != nil {
		t.Fatal(err)
	}
	if su.Mode()&fs.ModeSetuid != 0 {
		t.Errorf("bin/su kept setuid: %v", su.Mode())
	}
}

// TestHostile unpacks every hostile image: each fails with a clear error
// and writes nothing outside the destination.
func TestHostile(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, h := range acitest.HostileImages(outside) {
		t.Run(h.Name, func(t *testing.T) {
			dest := filepath.Join(base, "dest", strings.Repeat("d/", 3)+string(rune('a'+i%26))+strings.Repeat("x", i/26))
			if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := aci.Unpack(context.Background(), bytes.NewReader(h.Archive), dest, aci.Options{Limits: h.Limits, Check: aci.HostCheck})
			if problem := h.Refused(err); problem != "" {
				t.Error(problem)
			}
			assertOnly(t, base, "dest", "outside", "outside/secret")
		})
	}
}

// assertOnly fails if base holds any top-level entry, or anything under
// outside, other than the allowed names.
func assertOnly(t *testing.T, base string, allowed ...string) {
	t.Helper()
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		if rel == "." || strings.HasPrefix(rel, "dest/") {
			return nil
		}
		if !ok[rel] {
			t.Errorf("%s was written outside the destination", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBombMemory checks that a decompression bomb fails on the size cap
// without memory growing with the bomb.
func TestBombMemory(t *testing.T) {
	h := acitest.HostileImages(t.TempDir())
	var bomb acitest.Hostile
	for _, x := range h {
		if x.Name == "decompression bomb" {
			bomb = x
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := aci.Unpack(context.Background(), bytes.NewReader(bomb.Archive), "", aci.Options{Limits: aci.Limits{MaxImageBytes: 32 << 20}})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, aci.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if grew := int64(after.HeapSys) - int64(before.HeapSys); grew > 16<<20 {
		t.Errorf("heap grew by %d bytes reading a bomb", grew)
	}
}

func TestReadManifest(t *testing.T) {
	data, err := acitest.Compress(sampleImage(), "gzip")
	if err != nil {
		t.Fatal(err)
	}
	m, err := aci.ReadManifest(context.Background(), bytes.NewReader(data), aci.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.GetLabel("version"); v != "1.0.0" {
		t.Errorf("version = %q", v)
	}
	if _, err := aci.ReadManifest(context.Background(), bytes.NewReader(acitest.Tar(acitest.Dir("rootfs"))), aci.Limits{}); !errors.Is(err, aci.ErrNoManifest) {
		t.Errorf("no manifest: err = %v", err)
	}
}

func TestUnpackCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := aci.Unpack(ctx, bytes.NewReader(sampleImage()), t.TempDir(), aci.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestTrailingBytes: bytes after the end of the tar are part of the ID.
func TestTrailingBytes(t *testing.T) {
	a := append(sampleImage(), make([]byte, 4096)...)
	res, err := aci.Unpack(context.Background(), bytes.NewReader(a), "", aci.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := acitest.ID(a); res.ID != want {
		t.Errorf("ID = %s, want %s", res.ID, want)
	}
}

var _ = tar.TypeReg
