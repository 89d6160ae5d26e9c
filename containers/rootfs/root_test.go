package rootfs_test

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kurmaos/kurma/containers/rootfs"
)

func TestClean(t *testing.T) {
	tests := []struct {
		in, want string
		bad      string // part of the error, if refused
	}{
		{in: "a/b", want: "a/b"},
		{in: "./a/b/", want: "a/b"},
		{in: "a/./b", want: "a/b"},
		{in: "", want: ""},
		{in: ".", want: ""},
		{in: "./", want: ""},
		{in: "/etc/passwd", bad: "absolute"},
		{in: "a/../../b", bad: `".."`},
		{in: "..", bad: `".."`},
		{in: "a//b", bad: "empty component"},
		{in: "a\x00b", bad: "NUL"},
		{in: strings.Repeat("a/", 2048) + "b", bad: "longer than"},
		{in: strings.Repeat("a", 256), bad: "component longer"},
	}
	for _, tt := range tests {
		got, err := rootfs.Clean(tt.in)
		if tt.bad != "" {
			var ne *rootfs.NameError
			if !errors.As(err, &ne) || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("Clean(%.40q) = %q, %v; want an error saying %q", tt.in, got, err, tt.bad)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Clean(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func create(t *testing.T, r *rootfs.Root, h tar.Header, body string) error {
	t.Helper()
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(body))
	}
	if h.Mode == 0 {
		h.Mode = 0o644
	}
	return r.Create(&h, strings.NewReader(body))
}

// TestReplace: a later entry replaces an earlier one, never following it.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	r, err := rootfs.Open(dir, rootfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		h    tar.Header
		body string
	}{
		{tar.Header{Name: "d", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		{tar.Header{Name: "d/f", Typeflag: tar.TypeReg}, "x"},
		{tar.Header{Name: "d", Typeflag: tar.TypeSymlink, Linkname: outside}, ""}, // a symlink over a directory
		{tar.Header{Name: "d", Typeflag: tar.TypeReg}, "file over symlink"},       // not written through it
		{tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: outside + "/x"}, ""},
		{tar.Header{Name: "l", Typeflag: tar.TypeReg}, "file over dangling symlink"},
		{tar.Header{Name: "p", Typeflag: tar.TypeFifo, Mode: 0o600}, ""},
	}
	for _, s := range steps {
		if err := create(t, r, s.h, s.body); err != nil {
			t.Fatalf("%s: %v", s.h.Name, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"d": "file over symlink", "l": "file over dangling symlink"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", name, b, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside: %v", ents)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "p")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("p = %v, %v; want a FIFO", fi, err)
	}
}

func TestDevicePolicy(t *testing.T) {
	dev := tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}
	for _, p := range []rootfs.DevicePolicy{rootfs.DevicesReject, rootfs.DevicesSkip, rootfs.DevicesCreate} {
		t.Run(p.String(), func(t *testing.T) {
			dir := t.TempDir()
			r, err := rootfs.Open(dir, rootfs.Options{Devices: p})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			err = create(t, r, dev, "")
			_, statErr := os.Lstat(filepath.Join(dir, "null"))
			switch p {
			case rootfs.DevicesReject:
				if !errors.Is(err, rootfs.ErrDevice) || statErr == nil {
					t.Errorf("err = %v, node exists %v", err, statErr == nil)
				}
			case rootfs.DevicesSkip:
				if err != nil || statErr == nil {
					t.Errorf("err = %v, node exists %v", err, statErr == nil)
				}
			case rootfs.DevicesCreate:
				if os.Geteuid() != 0 {
					t.Skip("creating device nodes needs root")
				}
				if err != nil || statErr != nil {
					t.Errorf("err = %v, stat %v", err, statErr)
				}
			}
		})
	}
}

// TestWhiteoutRefused: a 0/0 character device is an overlayfs whiteout;
// it would hide files of lower layers, so it is never created.
func TestWhiteoutRefused(t *testing.T) {
	r, err := rootfs.Open(t.TempDir(), rootfs.Options{Devices: rootfs.DevicesCreate})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := create(t, r, tar.Header{Name: "w", Typeflag: tar.TypeChar}, ""); err == nil || !strings.Contains(err.Error(), "whiteout") {
		t.Errorf("err = %v, want a whiteout refusal", err)
	}
}
