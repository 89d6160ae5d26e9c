package disks

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kurmaos/kurma/config"
)

const imageSize = 8 << 20

// image makes a file of imageSize bytes, filled by fill.
func image(t *testing.T, name string, fill func(path string)) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, imageSize); err != nil {
		t.Fatal(err)
	}
	if fill != nil {
		fill(p)
	}
	return p
}

func tool(t *testing.T, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (scripts/setup installs it)", name)
	}
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

const testUUID = "3f0c1b7e-5a2d-4c1e-9b8a-0d6e2f4a1c3b"

func TestProbe(t *testing.T) {
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	tests := []struct {
		name string
		fill func(t *testing.T, p string)
		want Signature
	}{
		{"blank", nil, Signature{Kind: KindBlank}},
		{"zeros with data in the middle", func(t *testing.T, p string) { writeAt(t, p, 4<<20, random) }, Signature{Kind: KindBlank}},
		{"random data", func(t *testing.T, p string) { writeAt(t, p, 0, random) }, Signature{Kind: KindUnknown}},
		{"data at the end", func(t *testing.T, p string) { writeAt(t, p, imageSize-4096, random) }, Signature{Kind: KindUnknown}},
		{"ext4", func(t *testing.T, p string) { tool(t, "mkfs.ext4", "-q", "-F", "-L", "data", "-U", testUUID, p) },
			Signature{Kind: KindFilesystem, Type: "ext4", Label: "data", UUID: testUUID, Size: imageSize}},
		{"ext2", func(t *testing.T, p string) { tool(t, "mke2fs", "-q", "-F", "-t", "ext2", p) },
			Signature{Kind: KindFilesystem, Type: "ext2"}},
		{"vfat", func(t *testing.T, p string) { tool(t, "mkfs.vfat", "-n", "KURMA", "-i", "1234ABCD", p) },
			Signature{Kind: KindFilesystem, Type: "vfat", Label: "KURMA", UUID: "1234-ABCD"}},
		{"swap", func(t *testing.T, p string) { tool(t, "mkswap", "-L", "sw", p) }, Signature{Kind: KindOther, Type: "swap", Label: "sw"}},
		{"gpt", func(t *testing.T, p string) { writeAt(t, p, 512, []byte("EFI PART")) }, Signature{Kind: KindOther, Type: "gpt"}},
		{"dos partition table", func(t *testing.T, p string) {
			writeAt(t, p, 446+4, []byte{0x83})
			writeAt(t, p, 510, []byte{0x55, 0xAA})
		}, Signature{Kind: KindOther, Type: "dos"}},
		{"LUKS", func(t *testing.T, p string) { writeAt(t, p, 0, []byte("LUKS\xba\xbe\x00\x02")) }, Signature{Kind: KindOther, Type: "crypto_LUKS"}},
		{"LVM", func(t *testing.T, p string) {
			writeAt(t, p, 512, []byte("LABELONE"))
			writeAt(t, p, 512+24, []byte("LVM2 001"))
		}, Signature{Kind: KindOther, Type: "LVM2_member"}},
		{"RAID 1.0 at the end", func(t *testing.T, p string) {
			writeAt(t, p, (imageSize-8<<10)&^(4<<10-1), []byte{0xfc, 0x4e, 0x2b, 0xa9})
		}, Signature{Kind: KindOther, Type: "linux_raid_member"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := image(t, "disk.img", func(p string) {
				if tt.fill != nil {
					tt.fill(t, p)
				}
			})
			got, err := ProbeDevice(p)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.UUID == "" {
				got.UUID = "" // made up by the tool
			}
			if tt.want.Size == 0 {
				got.Size = 0
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	ext4 := Signature{Kind: KindFilesystem, Type: "ext4", UUID: testUUID}
	tests := []struct {
		name       string
		found      Signature
		disk       config.Disk
		wantFormat bool
		wantFS     string
		refused    bool
	}{
		{"blank, if-blank", Signature{Kind: KindBlank}, config.Disk{Format: config.FormatIfBlank}, true, "ext4", false},
		{"blank, if-blank, xfs", Signature{Kind: KindBlank}, config.Disk{Format: config.FormatIfBlank, Filesystem: "xfs"}, true, "xfs", false},
		{"blank, never", Signature{Kind: KindBlank}, config.Disk{Format: config.FormatNever}, false, "", true},
		{"blank, no policy means never", Signature{Kind: KindBlank}, config.Disk{}, false, "", true},
		{"ext4 with data, if-blank", ext4, config.Disk{Format: config.FormatIfBlank}, false, "ext4", false},
		{"ext4 with data, never", ext4, config.Disk{}, false, "ext4", false},
		{"ext4 with data, configured xfs: mounted as ext4", ext4, config.Disk{Format: config.FormatIfBlank, Filesystem: "xfs"}, false, "ext4", false},
		{"unknown data, if-blank", Signature{Kind: KindUnknown}, config.Disk{Format: config.FormatIfBlank}, false, "", true},
		{"unknown data, never", Signature{Kind: KindUnknown}, config.Disk{}, false, "", true},
		{"partition table, if-blank", Signature{Kind: KindOther, Type: "gpt"}, config.Disk{Format: config.FormatIfBlank}, false, "", true},
		{"ext4 with data, force", ext4, config.Disk{Format: config.FormatForce}, true, "ext4", false},
		{"unknown data, force", Signature{Kind: KindUnknown}, config.Disk{Format: config.FormatForce, Filesystem: "xfs"}, true, "xfs", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Decide("/dev/vdb", tt.found, tt.disk)
			var refused *RefusedError
			if got := errors.As(err, &refused); got != tt.refused {
				t.Fatalf("refused = %v (%v), want %v", got, err, tt.refused)
			}
			if plan.Format != tt.wantFormat || plan.FSType != tt.wantFS {
				t.Errorf("plan = %+v, want format %v as %q", plan, tt.wantFormat, tt.wantFS)
			}
		})
	}
	_, err := Decide("/dev/vdc", Signature{Kind: KindUnknown}, config.Disk{Format: config.FormatIfBlank})
	if want := "disk /dev/vdc holds data of an unknown kind (no filesystem signature) and format is if-blank: not touched; only a blank device is formatted; format: force erases it"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, imageSize); err != nil {
			t.Fatal(err)
		}
		if len(args) > 0 {
			tool(t, args[0], append(args[1:], p)...)
		}
		return p
	}
	blank := mk("vdb")
	data := mk("vdc", "mkfs.ext4", "-q", "-F", "-L", "data", "-U", testUUID)
	oem := mk("vdd", "mkfs.vfat", "-n", "KURMA_OEM")
	twin1 := mk("vde", "mkfs.ext4", "-q", "-F", "-L", "twin")
	twin2 := mk("vdf", "mkfs.ext4", "-q", "-F", "-L", "twin")
	r := &Resolver{Devices: func() ([]string, error) { return []string{blank, data, oem, twin1, twin2}, nil }}
	tests := []struct {
		name    string
		disk    config.Disk
		claimed []string
		want    string
		wantErr string
	}{
		{"path", config.Disk{Path: blank}, nil, blank, ""},
		{"glob, first in name order", config.Disk{Path: filepath.Join(dir, "vd[bc]")}, nil, blank, ""},
		{"glob passes over a claimed device", config.Disk{Path: filepath.Join(dir, "vd[bc]")}, []string{blank}, data, ""},
		{"label", config.Disk{Label: "data"}, nil, data, ""},
		{"label of FAT in any case", config.Disk{Label: "kurma_oem"}, nil, oem, ""},
		{"ext4 label is exact", config.Disk{Label: "DATA"}, nil, "", "no such device"},
		{"uuid in upper case", config.Disk{UUID: strings.ToUpper(testUUID)}, nil, data, ""},
		{"missing path", config.Disk{Path: filepath.Join(dir, "vdz")}, nil, "", "no such device"},
		{"label on two devices", config.Disk{Label: "twin"}, nil, "", "label=twin are on " + twin1 + " and " + twin2},
		{"label on two devices, one claimed", config.Disk{Label: "twin"}, []string{twin1}, twin2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claimed := map[string]bool{}
			for _, c := range tt.claimed {
				claimed[c] = true
			}
			got, _, err := r.Resolve(context.Background(), tt.disk, claimed)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestMkfsKeepsTheName(t *testing.T) {
	name, args, err := mkfs("ext4", "/dev/vdb", config.Disk{Label: "data"})
	if err != nil || name != "mke2fs" || strings.Join(args, " ") != "-t ext4 -F -q -E lazy_itable_init=1 -L data /dev/vdb" {
		t.Errorf("got %s %v %v", name, args, err)
	}
	if _, _, err := mkfs("ntfs", "/dev/vdb", config.Disk{}); err == nil {
		t.Error("ntfs: no error")
	}
}
