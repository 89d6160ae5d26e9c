package volume

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

var files = map[string]string{
	"user-data":                    "hostname: node-1\n",
	"meta-data":                    "instance-id: i-1\n",
	"openstack/latest/user_data":   "hostname: node-2\n",
	"a-rather-long-file-name.yaml": strings.Repeat("long file, several clusters\n", 300),
}

// build makes a volume image with a tool, or skips the test saying which
// package to install.
func build(t testing.TB, kind, label string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "volume.img")
	run := func(name string, args ...string) {
		t.Helper()
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed (Debian: xorriso, dosfstools, mtools)", name)
		}
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
	}
	mcopy := func() {
		ents, _ := os.ReadDir(src)
		args := []string{"-s", "-i", out}
		for _, e := range ents {
			args = append(args, filepath.Join(src, e.Name()))
		}
		run("mcopy", append(args, "::/")...)
	}
	switch kind {
	case "iso-rockridge":
		run("xorriso", "-as", "mkisofs", "-quiet", "-o", out, "-V", label, "-R", src)
	case "iso-joliet":
		run("xorriso", "-as", "mkisofs", "-quiet", "-o", out, "-V", label, "-J", src)
	case "iso-plain":
		run("xorriso", "-as", "mkisofs", "-quiet", "--norock", "-o", out, "-V", label, src)
	case "fat12":
		run("mkfs.vfat", "-C", "-n", label, out, "1440")
		mcopy()
	case "fat16":
		run("mkfs.vfat", "-F", "16", "-C", "-n", label, out, "20000")
		mcopy()
	case "fat32":
		run("mkfs.vfat", "-F", "32", "-C", "-n", label, out, "40000")
		mcopy()
	}
	return out
}

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		kind, label, wantType string
		names                 []string // names the volume shows
	}{
		{"iso-rockridge", "cidata", TypeISO9660, []string{"user-data", "openstack/latest/user_data", "a-rather-long-file-name.yaml"}},
		{"iso-joliet", "cidata", TypeISO9660, []string{"user-data", "openstack/latest/user_data", "a-rather-long-file-name.yaml"}},
		{"iso-plain", "config-2", TypeISO9660, []string{"user_dat", "openstac/latest/user_dat"}},
		{"fat12", "CIDATA", TypeVFAT, []string{"user-data", "openstack/latest/user_data", "a-rather-long-file-name.yaml"}},
		{"fat16", "CIDATA", TypeVFAT, []string{"user-data", "openstack/latest/user_data"}},
		{"fat32", "CONFIG-2", TypeVFAT, []string{"user-data", "openstack/latest/user_data"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			img := build(t, tc.kind, tc.label)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fsys, info, err := Open(f)
			if err != nil {
				t.Fatal(err)
			}
			if info.Type != tc.wantType || info.Label != tc.label {
				t.Errorf("info = %+v, want %s labelled %s", info, tc.wantType, tc.label)
			}
			if err := fstest.TestFS(fsys, tc.names...); err != nil {
				t.Error(err)
			}
			for _, want := range []string{"user-data", "openstack/latest/user_data"} {
				got, err := fs.ReadFile(fsys, want)
				if err != nil || string(got) != files[want] {
					t.Errorf("ReadFile(%s) = %q, %v; want %q", want, got, err, files[want])
				}
			}
			if tc.kind != "iso-plain" {
				got, err := fs.ReadFile(fsys, "a-rather-long-file-name.yaml")
				if err != nil || string(got) != files["a-rather-long-file-name.yaml"] {
					t.Errorf("long file: %d bytes, %v", len(got), err)
				}
			}
			if _, err := fsys.Open("nope"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open(nope) = %v, want not exist", err)
			}
		})
	}
}

func TestFATNamesIgnoreCase(t *testing.T) {
	f, err := os.Open(build(t, "fat12", "CIDATA"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsys, _, err := Open(f)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(fsys, "OpenStack/LATEST/User_Data"); err != nil || string(b) != files["openstack/latest/user_data"] {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
}

func TestFind(t *testing.T) {
	iso := build(t, "iso-rockridge", "cidata")
	fat := build(t, "fat12", "CONFIG-2")
	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte{0xEB}, 70000), 0o644); err != nil {
		t.Fatal(err)
	}
	finder := Finder{Devices: func() ([]string, error) { return []string{"/nonexistent", junk, fat, iso}, nil }}
	for label, want := range map[string]string{"cidata": iso, "CIDATA": iso, "config-2": fat} {
		if got, err := finder.Find(label); err != nil || got != want {
			t.Errorf("Find(%s) = %q, %v; want %q", label, got, err, want)
		}
	}
	if _, err := finder.Find("other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find(other) = %v, want ErrNotFound", err)
	}
}

func TestBlockDevices(t *testing.T) {
	sys := t.TempDir()
	for name, size := range map[string]string{"vda": "2048\n", "vda1": "1024\n", "loop0": "0\n", "sr0": "760\n"} {
		if err := os.MkdirAll(filepath.Join(sys, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, name, "size"), []byte(size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := blockDevices(sys, "/dev")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/dev/sr0", "/dev/vda", "/dev/vda1"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("blockDevices = %v, want %v", got, want)
	}
}

func TestOpenPathDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "user-data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, closeFn, err := OpenPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if b, err := fs.ReadFile(fsys, "user-data"); err != nil || string(b) != "x" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
}

// TestCorruptImages checks that damaged volumes give errors, not panics
// or endless loops: every byte of the metadata is flipped in turn.
func TestCorruptImages(t *testing.T) {
	for _, kind := range []string{"iso-rockridge", "fat12"} {
		img, err := os.ReadFile(build(t, kind, "cidata"))
		if err != nil {
			t.Fatal(err)
		}
		start, end := 0, 4096
		if kind == "iso-rockridge" {
			start, end = 16*2048, 24*2048
		}
		for i := start; i < end && i < len(img); i += 7 {
			b := bytes.Clone(img)
			b[i] ^= 0xFF
			if fsys, _, err := Open(bytes.NewReader(b)); err == nil {
				readAll(fsys)
			}
		}
	}
}

func FuzzOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add(append(bytes.Repeat([]byte{0}, 16*2048), []byte("\x01CD001\x01")...))
	for _, kind := range []string{"iso-rockridge", "fat12"} {
		if _, err := exec.LookPath("xorriso"); err != nil {
			break
		}
		if _, err := exec.LookPath("mcopy"); err != nil {
			break
		}
		b, err := os.ReadFile(build(f, kind, "cidata"))
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if fsys, _, err := Open(bytes.NewReader(data)); err == nil {
			readAll(fsys)
		}
	})
}

// readAll walks a volume and reads its first 1000 files, only to see that
// it ends.
func readAll(fsys fs.FS) {
	n := 0
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if n++; n > 1000 {
			return fs.SkipAll
		}
		if err == nil && !d.IsDir() {
			readSome(fsys, p)
		}
		return nil // a damaged directory is expected: walk on
	})
}

// readSome reads up to 1 MiB of a file: a damaged volume may claim files
// of gigabytes, which fs.ReadFile would allocate.
func readSome(fsys fs.FS, name string) {
	f, err := fsys.Open(name)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(f, 1<<20)) // only that it ends
}
