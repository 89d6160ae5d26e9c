// Package disks prepares the block devices of the configuration: it finds
// each one by path, glob, filesystem label or UUID (reading superblocks
// itself: there is no udev and no blkid), decides whether it may be
// formatted, formats it, grows its filesystem, mounts it and binds its
// usages under /var/lib/kurma.
//
// The rule it keeps above all: a device that holds anything it does not
// recognise as blank is never formatted unless the configuration says
// format: force.
package disks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kurmaos/kurma/config/volume"
)

// What a device holds, as Probe sees it.
const (
	KindBlank      = "blank"      // only zeros where signatures live
	KindFilesystem = "filesystem" // a filesystem Type names
	KindOther      = "other"      // a signature that is not a filesystem (partition table, LUKS, LVM, RAID, swap)
	KindUnknown    = "unknown"    // data without a signature Probe knows
)

// Signature is what Probe found on a device.
type Signature struct {
	Kind  string
	Type  string // ext4, ext3, ext2, xfs, btrfs, vfat, iso9660, swap, gpt, dos, crypto_LUKS, LVM2_member, linux_raid_member, …
	Label string
	UUID  string // lower-case 8-4-4-4-12 hex; XXXX-XXXX (upper case) for FAT
	// Size is the filesystem's size in bytes, when the superblock says
	// (ext*, xfs, btrfs); 0 otherwise.
	Size int64
}

func (s Signature) String() string {
	switch s.Kind {
	case KindBlank:
		return "no filesystem (blank)"
	case KindUnknown:
		return "data of an unknown kind (no filesystem signature)"
	case KindOther:
		return s.Type
	}
	var extra []string
	if s.Label != "" {
		extra = append(extra, fmt.Sprintf("label %q", s.Label))
	}
	if s.UUID != "" {
		extra = append(extra, "UUID "+s.UUID)
	}
	if len(extra) == 0 {
		return s.Type
	}
	return s.Type + " (" + strings.Join(extra, ", ") + ")"
}

// blankSpan is how much of each end of a device must be zeros for it to
// count as blank: every signature Probe knows lives in the first MiB or
// the last (RAID 0.90/1.0 and the backup GPT at the end).
const blankSpan = 1 << 20

// Probe reads what the device r of size bytes holds.
func Probe(r io.ReaderAt, size int64) (Signature, error) {
	head := make([]byte, min(size, blankSpan))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return Signature{}, fmt.Errorf("read the first %d bytes: %w", len(head), err)
	}
	tailOff := max(size-blankSpan, 0)
	tail := make([]byte, size-tailOff)
	if _, err := r.ReadAt(tail, tailOff); err != nil && !errors.Is(err, io.EOF) {
		return Signature{}, fmt.Errorf("read the last %d bytes: %w", len(tail), err)
	}
	for _, p := range probes {
		if sig, ok := p(r, head, tail, size); ok {
			return sig, nil
		}
	}
	if allZero(head) && allZero(tail) {
		return Signature{Kind: KindBlank}, nil
	}
	return Signature{Kind: KindUnknown}, nil
}

// A probe recognises one signature from the head and tail of a device
// (r for the rare one that reads elsewhere).
type probe func(r io.ReaderAt, head, tail []byte, size int64) (Signature, bool)

// probes are tried in order: filesystems before the partition tables
// whose boot sector they share (FAT, NTFS and ISO hybrids have a 55AA
// MBR signature).
var probes = []probe{probeExt, probeXFS, probeBtrfs, probeLUKS, probeISO, probeFAT, probeNTFS, probeSquashfs,
	probeSwap, probeRAID, probeLVM, probeBcache, probeGPT, probeMBR}

func at(b []byte, off, n int) []byte {
	if off < 0 || off+n > len(b) {
		return nil
	}
	return b[off : off+n]
}

func le16(b []byte, off int) uint16 {
	if s := at(b, off, 2); s != nil {
		return binary.LittleEndian.Uint16(s)
	}
	return 0
}

func le32(b []byte, off int) uint32 {
	if s := at(b, off, 4); s != nil {
		return binary.LittleEndian.Uint32(s)
	}
	return 0
}

func le64(b []byte, off int) uint64 {
	if s := at(b, off, 8); s != nil {
		return binary.LittleEndian.Uint64(s)
	}
	return 0
}

func be32(b []byte, off int) uint32 {
	if s := at(b, off, 4); s != nil {
		return binary.BigEndian.Uint32(s)
	}
	return 0
}

func be64(b []byte, off int) uint64 {
	if s := at(b, off, 8); s != nil {
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

func hasAt(b []byte, off int, magic string) bool {
	return bytes.Equal(at(b, off, len(magic)), []byte(magic))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// cstring is a NUL-padded string field.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

func formatUUID(b []byte) string {
	if len(b) != 16 || allZero(b) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ext2, ext3 and ext4: the superblock is at 1024.
func probeExt(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	const sb = 1024
	if le16(head, sb+56) != 0xEF53 {
		return Signature{}, false
	}
	compat, incompat := le32(head, sb+92), le32(head, sb+96)
	typ := "ext2"
	switch {
	case incompat&(0x40|0x80|0x200) != 0: // extents, 64bit, flex_bg
		typ = "ext4"
	case compat&0x4 != 0: // has_journal
		typ = "ext3"
	}
	blocks := uint64(le32(head, sb+4))
	if incompat&0x80 != 0 {
		blocks |= uint64(le32(head, sb+0x150)) << 32
	}
	logBlock := le32(head, sb+24)
	var size int64
	if logBlock < 8 {
		size = int64(blocks) << (10 + logBlock)
	}
	return Signature{Kind: KindFilesystem, Type: typ, Label: cstring(at(head, sb+120, 16)),
		UUID: formatUUID(at(head, sb+104, 16)), Size: size}, true
}

func probeXFS(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	if !hasAt(head, 0, "XFSB") {
		return Signature{}, false
	}
	size := int64(be32(head, 4)) * int64(be64(head, 8))
	return Signature{Kind: KindFilesystem, Type: "xfs", Label: cstring(at(head, 108, 12)),
		UUID: formatUUID(at(head, 32, 16)), Size: size}, true
}

func probeBtrfs(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	const sb = 64 << 10
	if !hasAt(head, sb+64, "_BHRfS_M") {
		return Signature{}, false
	}
	return Signature{Kind: KindFilesystem, Type: "btrfs", Label: cstring(at(head, sb+299, 256)),
		UUID: formatUUID(at(head, sb+32, 16)), Size: int64(le64(head, sb+0x70))}, true
}

func probeLUKS(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	if !hasAt(head, 0, "LUKS\xba\xbe") {
		return Signature{}, false
	}
	return Signature{Kind: KindOther, Type: "crypto_LUKS", UUID: cstring(at(head, 168, 40))}, true
}

func probeISO(r io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	if !hasAt(head, 32769, "CD001") {
		return Signature{}, false
	}
	sig := Signature{Kind: KindFilesystem, Type: "iso9660"}
	if info, err := volume.Probe(r); err == nil {
		sig.Label = info.Label
	}
	return sig, true
}

func probeFAT(r io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	info, err := volume.Probe(r)
	if err != nil || info.Type != volume.TypeVFAT {
		return Signature{}, false
	}
	// The volume serial: at 67 on FAT32 (after its extended BPB), at 39
	// on FAT12/16; present when the extended boot signature is 0x29.
	idAt := 39
	if le16(head, 22) == 0 { // FAT32 keeps a 16-bit FAT size of 0
		idAt = 67
	}
	sig := Signature{Kind: KindFilesystem, Type: "vfat", Label: info.Label}
	if at(head, idAt-1, 1) != nil && head[idAt-1] == 0x29 {
		id := le32(head, idAt)
		sig.UUID = fmt.Sprintf("%04X-%04X", id>>16, id&0xffff)
	}
	return sig, true
}

func probeNTFS(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	if !hasAt(head, 3, "NTFS    ") {
		return Signature{}, false
	}
	return Signature{Kind: KindFilesystem, Type: "ntfs"}, true
}

func probeSquashfs(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	if !hasAt(head, 0, "hsqs") {
		return Signature{}, false
	}
	return Signature{Kind: KindFilesystem, Type: "squashfs"}, true
}

func probeSwap(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	for _, page := range []int{4096, 8192, 16384, 65536} {
		if hasAt(head, page-10, "SWAPSPACE2") || hasAt(head, page-10, "SWAP-SPACE") {
			return Signature{Kind: KindOther, Type: "swap", Label: cstring(at(head, 1024+28, 16)),
				UUID: formatUUID(at(head, 1024+12, 16))}, true
		}
	}
	return Signature{}, false
}

// Linux software RAID: superblock 1.1 at 0, 1.2 at 4 KiB, 1.0 and 0.90
// near the end.
func probeRAID(_ io.ReaderAt, head, tail []byte, size int64) (Signature, bool) {
	const magic = 0xa92b4efc
	raid := Signature{Kind: KindOther, Type: "linux_raid_member"}
	if le32(head, 0) == magic || le32(head, 4096) == magic {
		return raid, true
	}
	tailStart := size - int64(len(tail))
	for _, off := range []int64{
		(size &^ (64<<10 - 1)) - 64<<10, // 0.90
		(size - 8<<10) &^ (4<<10 - 1),   // 1.0
	} {
		if off >= tailStart && off >= 0 {
			b := tail[off-tailStart:]
			if le32(b, 0) == magic || be32(b, 0) == magic {
				return raid, true
			}
		}
	}
	return Signature{}, false
}

func probeLVM(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	for sector := 0; sector < 4; sector++ {
		if hasAt(head, sector*512, "LABELONE") && hasAt(head, sector*512+24, "LVM2 001") {
			return Signature{Kind: KindOther, Type: "LVM2_member"}, true
		}
	}
	return Signature{}, false
}

func probeBcache(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	if !hasAt(head, 4096+24, "\xc6\x85\x73\xf6\x4e\x1a\x45\xca\x82\x65\xf5\x7f\x48\xba\x6d\x81") {
		return Signature{}, false
	}
	return Signature{Kind: KindOther, Type: "bcache"}, true
}

func probeGPT(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	for _, sector := range []int{512, 4096} {
		if hasAt(head, sector, "EFI PART") {
			return Signature{Kind: KindOther, Type: "gpt"}, true
		}
	}
	return Signature{}, false
}

// probeMBR recognises a DOS partition table: the 55AA signature with at
// least one partition entry in use.
func probeMBR(_ io.ReaderAt, head, _ []byte, _ int64) (Signature, bool) {
	if le16(head, 510) != 0xAA55 {
		return Signature{}, false
	}
	for i := 0; i < 4; i++ {
		if e := at(head, 446+16*i, 16); e != nil && e[4] != 0 {
			return Signature{Kind: KindOther, Type: "dos"}, true
		}
	}
	return Signature{}, false
}
