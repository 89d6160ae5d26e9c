package bootimage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memDisk is a disk image in memory.
type memDisk []byte

func (d memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(d[off:], p), nil }
func (d memDisk) ReadAt(p []byte, off int64) (int, error)  { return copy(p, d[off:]), nil }

func TestGUID(t *testing.T) {
	g := MustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	// On disk, the first three fields are little-endian.
	want := []byte{0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b}
	if !bytes.Equal(g[:], want) {
		t.Errorf("ESP type on disk = % x, want % x", g[:], want)
	}
	if got := g.String(); got != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" {
		t.Errorf("String() = %s", got)
	}
	for _, bad := range []string{"", "C12A7328F81F11D2BA4B00A0C93EC93B", "C12A7328-F81F-11D2-BA4B-00A0C93EC93G"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) succeeded", bad)
		}
	}
	a, b := DerivedGUID("kurma", "esp"), DerivedGUID("kurma", "esp")
	if a != b || a == DerivedGUID("kurma", "data") || a == DerivedGUID("other", "esp") {
		t.Errorf("derived GUIDs are not a function of seed and name: %s %s", a, DerivedGUID("kurma", "data"))
	}
	if s := a.String(); s[14] != '4' || !strings.ContainsRune("89AB", rune(s[19])) {
		t.Errorf("derived GUID %s is not version 4, RFC 4122 variant", s)
	}
}

func TestDiskLayout(t *testing.T) {
	tbl, err := Disk{DataSize: 64 * mib}.Layout()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tbl.Sectors, uint64((1+128+64+1)*mib/sectorSize); got != want {
		t.Errorf("sectors = %d, want %d", got, want)
	}
	esp, data := tbl.Partitions[0], tbl.Partitions[1]
	if esp.FirstLBA != 2048 || esp.LastLBA != 2048+128*2048-1 || esp.Attributes != AttrLegacyBIOSBootable || esp.Type != TypeESP || esp.Name != ESPLabel {
		t.Errorf("ESP = %+v", esp)
	}
	if data.FirstLBA != esp.LastLBA+1 || data.LastLBA-data.FirstLBA+1 != 64*2048 || data.Type != TypeLinuxData || data.Name != DataPartitionName {
		t.Errorf("data = %+v", data)
	}
	if data.LastLBA > tbl.LastUsableLBA() {
		t.Errorf("data ends at %d, after the last usable LBA %d", data.LastLBA, tbl.LastUsableLBA())
	}
	noData, err := Disk{}.Layout()
	if err != nil || len(noData.Partitions) != 1 {
		t.Errorf("without data: %d partitions, %v", len(noData.Partitions), err)
	}
	for _, d := range []Disk{{ESPSize: 4 * mib}, {ESPSize: mib + 1}, {DataSize: 100}, {DataSize: -mib}} {
		if _, err := d.Layout(); err == nil {
			t.Errorf("Layout(%+v) succeeded", d)
		}
	}
}

func TestGPTRoundTrip(t *testing.T) {
	tbl, err := Disk{ESPSize: 8 * mib, DataSize: 2 * mib, Seed: "test"}.Layout()
	if err != nil {
		t.Fatal(err)
	}
	tbl.BootCode = []byte("boot code")
	tbl.DiskSignature = 0x4b55524d
	disk := make(memDisk, tbl.Sectors*sectorSize)
	if err := tbl.WriteTo(disk); err != nil {
		t.Fatal(err)
	}
	got, err := ReadGPT(disk)
	if err != nil {
		t.Fatal(err)
	}
	if got.DiskGUID != tbl.DiskGUID || got.Sectors != tbl.Sectors || got.DiskSignature != tbl.DiskSignature || !bytes.HasPrefix(got.BootCode, tbl.BootCode) {
		t.Errorf("read %+v, wrote %+v", got, tbl)
	}
	if len(got.Partitions) != 2 || got.Partitions[0] != tbl.Partitions[0] || got.Partitions[1] != tbl.Partitions[1] {
		t.Errorf("partitions: read %+v, wrote %+v", got.Partitions, tbl.Partitions)
	}
	// The protective MBR: one 0xEE partition from LBA 1 over the disk,
	// not active.
	p := disk[446:]
	if p[0] != 0 || p[4] != 0xee || binary.LittleEndian.Uint32(p[8:]) != 1 || uint64(binary.LittleEndian.Uint32(p[12:])) != tbl.Sectors-1 {
		t.Errorf("protective MBR entry % x", p[:16])
	}
	// The backup header mirrors the primary, pointing back at it.
	last := tbl.Sectors - 1
	backup := disk[last*sectorSize : last*sectorSize+sectorSize]
	if string(backup[:8]) != "EFI PART" || binary.LittleEndian.Uint64(backup[24:]) != last || binary.LittleEndian.Uint64(backup[32:]) != 1 ||
		binary.LittleEndian.Uint64(backup[72:]) != last-32 {
		t.Errorf("backup header % x", backup[:96])
	}
	h := append([]byte(nil), backup[:gptHeaderSize]...)
	binary.LittleEndian.PutUint32(h[16:], 0)
	if crc32.ChecksumIEEE(h) != binary.LittleEndian.Uint32(backup[16:]) {
		t.Errorf("backup header checksum is wrong")
	}
	if !bytes.Equal(disk[2*sectorSize:34*sectorSize], disk[(last-32)*sectorSize:last*sectorSize]) {
		t.Errorf("backup entries differ from the primary ones")
	}
	// A flipped bit is caught.
	disk[2*sectorSize+60] ^= 1
	if _, err := ReadGPT(disk); err == nil || !strings.Contains(err.Error(), "entries checksum") {
		t.Errorf("corrupt entries: %v", err)
	}
}

func TestGPTRejects(t *testing.T) {
	ok := GPTPartition{Type: TypeESP, FirstLBA: 34, LastLBA: 100}
	tests := []struct {
		name string
		t    GPT
		want string
	}{
		{"tiny disk", GPT{Sectors: 40}, "too small"},
		{"outside", GPT{Sectors: 1000, Partitions: []GPTPartition{{FirstLBA: 10, LastLBA: 20}}}, "outside"},
		{"overlap", GPT{Sectors: 1000, Partitions: []GPTPartition{ok, {FirstLBA: 100, LastLBA: 200}}}, "overlap"},
		{"long name", GPT{Sectors: 1000, Partitions: []GPTPartition{{FirstLBA: 34, LastLBA: 40, Name: strings.Repeat("x", 37)}}}, "36"},
		{"boot code", GPT{Sectors: 1000, BootCode: make([]byte, 441)}, "boot code"},
	}
	for _, tc := range tests {
		err := tc.t.WriteTo(make(memDisk, tc.t.Sectors*sectorSize))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestGPTBootCodeFits checks that gptmbr.bin is the 440 bytes of boot
// code the protective MBR has room for.
func TestGPTBootCodeFits(t *testing.T) {
	code, err := os.ReadFile(gptMBR)
	if err != nil {
		t.Skipf("%v (package syslinux)", err)
	}
	if len(code) != 440 {
		t.Errorf("%s is %d bytes; BuildDisk expects 440", filepath.Base(gptMBR), len(code))
	}
}
