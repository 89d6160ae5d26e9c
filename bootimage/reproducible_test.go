package bootimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReproducible builds every medium twice, from copies of the same
// inputs in different directories with different modification times,
// more than two seconds apart (FAT dates have a two-second grain), and
// requires the same bytes: the ISO, the raw and qcow2 disk images, the
// UKI, and every file of the PXE tree.
func TestReproducible(t *testing.T) {
	if missing := MissingTools(); len(missing) > 0 {
		t.Skipf("the boot media tools are not installed (scripts/setup): %s", strings.Join(missing, ", "))
	}
	if testing.Short() {
		t.Skip("builds every medium twice, over two seconds apart")
	}
	build := func(mtime time.Time) map[string][]byte {
		dir := t.TempDir()
		m := testMedia()
		m.Kernel = filepath.Join(dir, "in", "vmlinuz")
		m.Initrd = filepath.Join(dir, "in", "initrd.img")
		m.Cmdline += ` "kurma.hostname=a b"` // quoted in grub.cfg
		for name, size := range map[string]int{m.Kernel: 300 << 10, m.Initrd: 700 << 10} {
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, pseudoRandom(name[len(dir):], size), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(name, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		out := func(name string) string { return filepath.Join(dir, name) }
		if err := BuildISO(ctx, m, out("kurma.iso")); err != nil {
			t.Fatal(err)
		}
		if err := BuildDisk(ctx, m, Disk{ESPSize: 16 * mib, DataSize: 8 * mib}, out("kurma.img")); err != nil {
			t.Fatal(err)
		}
		if err := ConvertQcow2(ctx, out("kurma.img"), out("kurma.qcow2")); err != nil {
			t.Fatal(err)
		}
		if err := BuildUKI(m, out("kurma.efi")); err != nil {
			t.Fatal(err)
		}
		if err := BuildESPDisk(ctx, m.Epoch, map[string]string{"/EFI/BOOT/BOOTX64.EFI": out("kurma.efi")}, out("esp.img")); err != nil {
			t.Fatal(err)
		}
		if err := BuildPXE(m, PXE{ConfigURL: "http://x/${mac}"}, out("pxe")); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() || strings.HasPrefix(p, filepath.Join(dir, "in")) {
				return err
			}
			data, err := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			files[rel] = data
			if strings.HasPrefix(rel, "pxe") && !fi.ModTime().Equal(m.Epoch) {
				t.Errorf("%s is dated %s, not the epoch %s", rel, fi.ModTime(), m.Epoch)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	start := time.Now()
	a := build(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	time.Sleep(2100*time.Millisecond - time.Since(start))
	b := build(time.Date(2022, 6, 1, 12, 0, 0, 0, time.UTC))
	want := []string{"esp.img", "kurma.efi", "kurma.img", "kurma.iso", "kurma.qcow2",
		"pxe/boot.ipxe", "pxe/initrd.img", "pxe/snponly.efi", "pxe/undionly.kpxe", "pxe/vmlinuz"}
	if got := sortedKeys(a); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("outputs %q, want %q", got, want)
	}
	for _, name := range sortedKeys(a) {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s differs between two builds (%d and %d bytes, first difference at %d)", name, len(a[name]), len(b[name]), firstDifference(a[name], b[name]))
		}
	}
}

// pseudoRandom returns size bytes that depend on seed only.
func pseudoRandom(seed string, size int) []byte {
	out := make([]byte, 0, size+32)
	sum := sha256.Sum256([]byte(seed))
	for len(out) < size {
		out = append(out, sum[:]...)
		sum = sha256.Sum256(sum[:])
	}
	return out[:size]
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
