package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func testIndex(t *testing.T) *Index {
	t.Helper()
	ix, err := OpenIndex("testdata/tree")
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestOrder(t *testing.T) {
	ix := testIndex(t)
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"virtio_net", []string{"net_failover", "failover", "virtio_ring", "virtio", "virtio_net"}},
		{"virtio-net", []string{"net_failover", "failover", "virtio_ring", "virtio", "virtio_net"}},
		{"failover", []string{"failover"}},
		{"ext4", []string{"crc16", "mbcache", "jbd2", "ext4"}},
		{"8250", nil}, // built in: nothing to insert
	} {
		got, err := ix.Order(tc.name)
		if err != nil {
			t.Errorf("Order(%s): %v", tc.name, err)
			continue
		}
		// Each module must come after everything it depends on.
		pos := map[string]int{}
		for i, m := range got {
			pos[m] = i
		}
		for _, m := range got {
			for _, d := range ix.deps[m] {
				if pos[d] > pos[m] {
					t.Errorf("Order(%s) = %v: %s before its dependency %s", tc.name, got, m, d)
				}
			}
		}
		if !sameSet(got, tc.want) {
			t.Errorf("Order(%s) = %v, want %v in dependency order", tc.name, got, tc.want)
		}
	}
}

func TestOrderErrors(t *testing.T) {
	ix := testIndex(t)
	if _, err := ix.Order("nonesuch"); !errors.Is(err, ErrUnknownModule) {
		t.Errorf("unknown module: got %v, want ErrUnknownModule", err)
	}
	if _, err := ix.Order("loop-a"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: got %v, want a cycle error", err)
	}
}

func TestLookup(t *testing.T) {
	ix := testIndex(t)
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"e1000", []string{"e1000"}},
		{"crypto-crc32c", []string{"crc32c_generic", "crc32c_intel"}},
		{"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", []string{"e1000"}},
		{"8250", []string{"8250"}},
	} {
		got, err := ix.Lookup(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Lookup(%s) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if _, err := ix.Lookup("pci:v0000FFFFd0000FFFF"); !errors.Is(err, ErrUnknownModule) {
		t.Errorf("Lookup of an unclaimed modalias: got %v, want ErrUnknownModule", err)
	}
}

func TestClosureFollowsSoftDependencies(t *testing.T) {
	ix := testIndex(t)
	got, err := ix.Closure("ext4", "virtio_net")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"crc16", "crc32c_generic", "crc32c_intel", "ext4", "failover", "jbd2", "mbcache", "net_failover", "virtio", "virtio_net", "virtio_ring"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Closure = %v, want %v", got, want)
	}
	if _, err := ix.Closure("ext4", "nonesuch"); !errors.Is(err, ErrUnknownModule) {
		t.Errorf("Closure with an unknown name: got %v", err)
	}
}

func TestSubsetIsAWorkingIndex(t *testing.T) {
	ix := testIndex(t)
	mods, err := ix.Closure("virtio_net")
	if err != nil {
		t.Fatal(err)
	}
	files := ix.Subset(mods)
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sub.Order("virtio_net")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ix.Order("virtio_net")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("subset Order = %v, want %v", got, want)
	}
	if sub.Has("ext4") {
		t.Error("the subset has ext4, which was not asked for")
	}
	if !sub.Builtin("8250") {
		t.Error("the subset lost modules.builtin")
	}
	if m, err := sub.Lookup("virtio:d00000001v00001AF4"); err != nil || m[0] != "virtio_net" {
		t.Errorf("subset alias lookup = %v, %v", m, err)
	}
	again := ix.Subset(mods)
	if !reflect.DeepEqual(files, again) {
		t.Error("Subset gave different bytes for the same modules")
	}
}

func TestMatching(t *testing.T) {
	ix := testIndex(t)
	aliases := []string{
		"cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0094,00E5",
		"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
		"pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00",
	}
	got := ix.Matching(aliases, []string{"crc32c_intel", "e1000", "virtio_net"})
	want := []string{"crc32c_intel", "e1000"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Matching = %v, want %v", got, want)
	}
	if got := ix.Matching(aliases, []string{"virtio_net"}); len(got) != 0 {
		t.Errorf("Matching without a matching device = %v, want none", got)
	}
}

func TestDeviceAliases(t *testing.T) {
	sys := t.TempDir()
	writeFile(t, filepath.Join(sys, "bus/pci/devices/0000:00:02.0/modalias"), "pci:v00008086d0000100E\n")
	writeFile(t, filepath.Join(sys, "bus/virtio/devices/virtio0/modalias"), "virtio:d00000001v00001AF4\n")
	writeFile(t, filepath.Join(sys, "bus/virtio/devices/virtio1/modalias"), "virtio:d00000001v00001AF4\n")
	writeFile(t, filepath.Join(sys, "devices/system/cpu/modalias"), "cpu:type:x86\n")
	got := DeviceAliases(sys)
	want := []string{"cpu:type:x86", "pci:v00008086d0000100E", "virtio:d00000001v00001AF4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DeviceAliases = %v, want %v", got, want)
	}
}

// TestProfilesResolveOnTheDebianKernel checks every built-in profile
// against the kernel scripts/setup fetched: a misspelt or missing module
// would leave an image without a driver.
func TestProfilesResolveOnTheDebianKernel(t *testing.T) {
	dirs, _ := filepath.Glob("../build/kernel/*/lib/modules/*")
	if len(dirs) == 0 {
		t.Skip("no kernel in build/kernel: run scripts/setup")
	}
	ix, err := OpenIndex(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ProfileNames() {
		p, err := LoadProfile(name)
		if err != nil {
			t.Fatal(err)
		}
		mods, err := p.Modules(ix)
		if err != nil {
			t.Errorf("profile %s: %v", name, err)
			continue
		}
		t.Logf("profile %s: %d modules", name, len(mods))
	}
	p, _ := LoadProfile("qemu")
	mods, _ := p.Modules(ix)
	for _, want := range []string{"virtio_net", "net_failover", "failover", "ext4", "crc32c_generic", "crc32c_intel", "jbd2"} {
		if !contains(mods, want) {
			t.Errorf("qemu profile lacks %s", want)
		}
	}
}

func TestLoadProfile(t *testing.T) {
	names := ProfileNames()
	if !contains(names, "qemu") || !contains(names, "baremetal") {
		t.Errorf("ProfileNames = %v, want qemu and baremetal", names)
	}
	for _, bad := range []string{"nonesuch", "../profiles/qemu", ""} {
		if _, err := LoadProfile(bad); !errors.Is(err, ErrUnknownProfile) {
			t.Errorf("LoadProfile(%q): got %v, want ErrUnknownProfile", bad, err)
		}
	}
	if _, err := ParseProfile("x", []byte("lod: [a]\n")); err == nil {
		t.Error("a profile with an unknown key was accepted")
	}
}

func contains(list []string, s string) bool { return indexOf(list, s) >= 0 }

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !contains(b, x) {
			return false
		}
	}
	return true
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
