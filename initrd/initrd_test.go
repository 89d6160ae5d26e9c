package initrd

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	kmod "github.com/kurmaos/kurma/kernel-modules"
)

const testTree = "../kernel-modules/testdata/tree"

func testSpec(t *testing.T) Spec {
	t.Helper()
	dir := t.TempDir()
	init := filepath.Join(dir, "kurma-init")
	if err := os.WriteFile(init, []byte("\x7fELF pretend init"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The module files of the test tree are empty stand-ins.
	tree := filepath.Join(dir, "lib/modules/1.0-test")
	copyTree(t, testTree, tree)
	p, err := kmod.ParseProfile("test", []byte("load: [virtio_net, ext4]\nmatch: [e1000]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		Init:          init,
		KernelRelease: "1.0-test",
		ModuleTree:    tree,
		Profile:       p,
		Config:        []byte("hostname: test\n"),
		Release:       map[string]string{"KURMA_PROFILE": "test", "KERNEL_RELEASE": "1.0-test"},
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := kmod.OpenIndex(to)
	if err != nil {
		t.Fatal(err)
	}
	mods, _ := ix.Closure("virtio_net", "ext4", "e1000")
	for _, m := range mods {
		p, _ := ix.Path(m)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("module "+m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func build(t *testing.T, spec Spec) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := Build(spec, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readArchive(t *testing.T, data []byte) map[string]cpio.Record {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]cpio.Record{}
	for _, r := range recs {
		m[r.Name] = r
	}
	return m
}

func content(t *testing.T, r cpio.Record) string {
	t.Helper()
	data, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestBuildIsReproducible(t *testing.T) {
	spec := testSpec(t)
	first := build(t, spec)
	// Touch every input: times must not leak into the archive.
	later := filepath.Join(t.TempDir(), "init")
	data, _ := os.ReadFile(spec.Init)
	os.WriteFile(later, data, 0o700)
	spec.Init = later
	second := build(t, spec)
	if !bytes.Equal(first, second) {
		t.Fatal("two builds from the same inputs differ")
	}
	spec.Compression = "gzip"
	if a, b := build(t, spec), build(t, spec); !bytes.Equal(a, b) {
		t.Fatal("two gzip builds from the same inputs differ")
	}
	spec.Config = []byte("hostname: other\n")
	if bytes.Equal(first, build(t, spec)) {
		t.Fatal("a different config gave the same bytes")
	}
}

func TestBuildContents(t *testing.T) {
	recs := readArchive(t, build(t, testSpec(t)))
	init, ok := recs["init"]
	if !ok || init.Mode != cpio.S_IFREG|0o755 {
		t.Errorf("/init: %v (present %v), want a 0755 file", init.Info, ok)
	}
	con, ok := recs["dev/console"]
	if !ok || con.Mode&cpio.S_IFMT != cpio.S_IFCHR || con.Rmajor != 5 || con.Rminor != 1 {
		t.Errorf("/dev/console: %v, want char 5:1", con.Info)
	}
	for _, d := range []string{"proc", "sys", "run", "tmp", "etc/kurma", "lib/modules/1.0-test/kernel/drivers/net"} {
		if r, ok := recs[d]; !ok || r.Mode&cpio.S_IFMT != cpio.S_IFDIR {
			t.Errorf("directory %s missing", d)
		}
	}
	base := "lib/modules/1.0-test/"
	for _, m := range []string{"kernel/drivers/net/virtio_net.ko", "kernel/net/core/failover.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/crypto/crc32c_generic.ko", "kernel/drivers/net/ethernet/intel/e1000/e1000.ko"} {
		if _, ok := recs[base+m]; !ok {
			t.Errorf("module %s missing", m)
		}
	}
	if _, ok := recs[base+"kernel/test/loop-a.ko"]; ok {
		t.Error("a module the profile does not need was shipped")
	}
	dep := content(t, recs[base+"modules.dep"])
	if !strings.Contains(dep, "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko") || strings.Contains(dep, "loop-a") {
		t.Errorf("modules.dep:\n%s", dep)
	}
	if got := content(t, recs["etc/kurma/config.yaml"]); got != "hostname: test\n" {
		t.Errorf("config.yaml = %q", got)
	}
	if got := content(t, recs["etc/kurma/release"]); got != "KERNEL_RELEASE=1.0-test\nKURMA_PROFILE=test\n" {
		t.Errorf("release = %q", got)
	}
	for name, r := range recs {
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want zeros", name, r.MTime, r.UID, r.GID)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	spec := testSpec(t)
	spec.Profile, _ = kmod.ParseProfile("bad", []byte("load: [nonesuch]\n"))
	if _, err := Build(spec, io.Discard); err == nil || !strings.Contains(err.Error(), "nonesuch") {
		t.Errorf("a profile naming a missing module: got %v", err)
	}
	spec = testSpec(t)
	spec.Init = filepath.Join(t.TempDir(), "missing")
	if _, err := Build(spec, io.Discard); err == nil {
		t.Error("a missing init binary was accepted")
	}
	spec = testSpec(t)
	spec.Compression = "lzma"
	if _, err := Build(spec, io.Discard); err == nil {
		t.Error("an unknown compression was accepted")
	}
}

// TestReproducibleWithTheDebianKernel builds the qemu profile's initrd
// from the kernel scripts/setup fetched twice, from two copies of the init
// binary with different times, and compares the bytes.
func TestReproducibleWithTheDebianKernel(t *testing.T) {
	trees, _ := filepath.Glob("../build/kernel/*/lib/modules/*")
	if len(trees) == 0 {
		t.Skip("no kernel in build/kernel: run scripts/setup")
	}
	p, err := kmod.LoadProfile("qemu")
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t)
	spec.ModuleTree, spec.KernelRelease, spec.Profile = trees[0], filepath.Base(trees[0]), p
	first := build(t, spec)
	data, _ := os.ReadFile(spec.Init)
	spec.Init = filepath.Join(t.TempDir(), "init")
	os.WriteFile(spec.Init, data, 0o700)
	if !bytes.Equal(first, build(t, spec)) {
		t.Fatal("two builds of the qemu initrd differ")
	}
	recs := readArchive(t, first)
	if _, ok := recs["lib/modules/"+spec.KernelRelease+"/kernel/drivers/net/virtio_net.ko"]; !ok {
		t.Error("the qemu initrd has no virtio_net")
	}
}
