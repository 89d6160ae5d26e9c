package bootimage

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// The GPT this package writes: 512-byte sectors, the protective MBR in
// LBA 0, the header in LBA 1 and 128 entries of 128 bytes in LBAs 2–33;
// the backup entries and header in the last 33 sectors.
const (
	sectorSize    = 512
	gptEntries    = 128
	gptEntrySize  = 128
	gptEntrySecs  = gptEntries * gptEntrySize / sectorSize // 32
	gptHeaderSize = 92
	mib           = 1 << 20
)

// Partition type GUIDs.
var (
	TypeESP       = MustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B") // EFI system partition
	TypeLinuxData = MustGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4") // Linux filesystem data
)

// AttrLegacyBIOSBootable marks the partition whose boot sector gptmbr.bin
// (or a firmware's legacy boot) chain-loads.
const AttrLegacyBIOSBootable = 1 << 2

// A GUID is stored as the UEFI specification writes it: the first three
// fields little-endian, the last two as bytes.
type GUID [16]byte

// ParseGUID reads "C12A7328-F81F-11D2-BA4B-00A0C93EC93B".
func ParseGUID(s string) (GUID, error) {
	var g GUID
	var raw [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("GUID %q: want 8-4-4-4-12 hexadecimal digits", s)
	}
	b, err := hex.DecodeString(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if err != nil {
		return g, fmt.Errorf("GUID %q: %w", s, err)
	}
	copy(raw[:], b)
	return guidFromRFC4122(raw), nil
}

// MustGUID is ParseGUID for constants.
func MustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// guidFromRFC4122 turns the big-endian byte order of the text form into
// the mixed-endian order on disk.
func guidFromRFC4122(b [16]byte) GUID {
	var g GUID
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:])
	return g
}

func (g GUID) String() string {
	return fmt.Sprintf("%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6],
		g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15])
}

// DerivedGUID is a version 4 style GUID computed from a seed and a name,
// so that a build gives the same GUIDs each time.
func DerivedGUID(seed, name string) GUID {
	sum := sha256.Sum256([]byte("kurma-gpt\x00" + seed + "\x00" + name))
	var b [16]byte
	copy(b[:], sum[:16])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return guidFromRFC4122(b)
}

// A GPTPartition is one entry of the partition table.
type GPTPartition struct {
	Type       GUID
	GUID       GUID
	Name       string // at most 36 UTF-16 code units
	FirstLBA   uint64
	LastLBA    uint64 // inclusive
	Attributes uint64
}

// A GPT is a disk's partition table.
type GPT struct {
	DiskGUID   GUID
	Sectors    uint64 // the disk's size in sectors
	Partitions []GPTPartition
	// BootCode is the first 440 bytes of the protective MBR (gptmbr.bin),
	// run by a BIOS; DiskSignature follows it.
	BootCode      []byte
	DiskSignature uint32
}

// FirstUsableLBA and LastUsableLBA bound where partitions may lie.
func (t *GPT) FirstUsableLBA() uint64 { return 2 + gptEntrySecs }
func (t *GPT) LastUsableLBA() uint64  { return t.Sectors - 2 - gptEntrySecs }

func (t *GPT) check() error {
	if t.Sectors < 2*(2+gptEntrySecs)+1 {
		return fmt.Errorf("gpt: a disk of %d sectors is too small", t.Sectors)
	}
	if len(t.Partitions) > gptEntries {
		return fmt.Errorf("gpt: %d partitions, at most %d", len(t.Partitions), gptEntries)
	}
	if len(t.BootCode) > 440 {
		return fmt.Errorf("gpt: boot code of %d bytes, at most 440", len(t.BootCode))
	}
	for i, p := range t.Partitions {
		if p.FirstLBA < t.FirstUsableLBA() || p.LastLBA > t.LastUsableLBA() || p.FirstLBA > p.LastLBA {
			return fmt.Errorf("gpt: partition %d (%s) at LBA %d–%d is outside %d–%d", i+1, p.Name, p.FirstLBA, p.LastLBA, t.FirstUsableLBA(), t.LastUsableLBA())
		}
		if len(utf16.Encode([]rune(p.Name))) > 36 {
			return fmt.Errorf("gpt: partition %d: name %q is longer than 36 UTF-16 units", i+1, p.Name)
		}
		for j, q := range t.Partitions[:i] {
			if p.FirstLBA <= q.LastLBA && q.FirstLBA <= p.LastLBA {
				return fmt.Errorf("gpt: partitions %d and %d overlap", j+1, i+1)
			}
		}
	}
	return nil
}

// WriteTo writes the protective MBR, the primary and the backup table to
// a disk image of t.Sectors sectors. It writes nothing else.
func (t *GPT) WriteTo(w io.WriterAt) error {
	if err := t.check(); err != nil {
		return err
	}
	entries := make([]byte, gptEntrySecs*sectorSize)
	for i, p := range t.Partitions {
		e := entries[i*gptEntrySize:]
		copy(e[0:16], p.Type[:])
		copy(e[16:32], p.GUID[:])
		binary.LittleEndian.PutUint64(e[32:], p.FirstLBA)
		binary.LittleEndian.PutUint64(e[40:], p.LastLBA)
		binary.LittleEndian.PutUint64(e[48:], p.Attributes)
		for j, u := range utf16.Encode([]rune(p.Name)) {
			binary.LittleEndian.PutUint16(e[56+2*j:], u)
		}
	}
	entriesCRC := crc32.ChecksumIEEE(entries)
	last := t.Sectors - 1
	primary := t.header(1, last, 2, entriesCRC)
	backup := t.header(last, 1, last-gptEntrySecs, entriesCRC)

	writes := []struct {
		off  uint64
		data []byte
	}{
		{0, t.protectiveMBR()},
		{1 * sectorSize, primary},
		{2 * sectorSize, entries},
		{(last - gptEntrySecs) * sectorSize, entries},
		{last * sectorSize, backup},
	}
	for _, wr := range writes {
		if _, err := w.WriteAt(wr.data, int64(wr.off)); err != nil {
			return fmt.Errorf("gpt: write at %d: %w", wr.off, err)
		}
	}
	return nil
}

func (t *GPT) header(my, alternate, entriesLBA uint64, entriesCRC uint32) []byte {
	h := make([]byte, sectorSize)
	copy(h[0:8], "EFI PART")
	binary.LittleEndian.PutUint32(h[8:], 0x00010000) // revision 1.0
	binary.LittleEndian.PutUint32(h[12:], gptHeaderSize)
	binary.LittleEndian.PutUint64(h[24:], my)
	binary.LittleEndian.PutUint64(h[32:], alternate)
	binary.LittleEndian.PutUint64(h[40:], t.FirstUsableLBA())
	binary.LittleEndian.PutUint64(h[48:], t.LastUsableLBA())
	copy(h[56:72], t.DiskGUID[:])
	binary.LittleEndian.PutUint64(h[72:], entriesLBA)
	binary.LittleEndian.PutUint32(h[80:], gptEntries)
	binary.LittleEndian.PutUint32(h[84:], gptEntrySize)
	binary.LittleEndian.PutUint32(h[88:], entriesCRC)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:gptHeaderSize]))
	return h
}

// protectiveMBR covers the disk with one partition of type 0xEE, not
// marked active, as the UEFI specification asks.
func (t *GPT) protectiveMBR() []byte {
	m := make([]byte, sectorSize)
	copy(m, t.BootCode)
	binary.LittleEndian.PutUint32(m[440:], t.DiskSignature)
	p := m[446:]
	p[1], p[2], p[3] = 0x00, 0x02, 0x00 // CHS of LBA 1
	p[4] = 0xee
	p[5], p[6], p[7] = 0xff, 0xff, 0xff // CHS beyond reach
	binary.LittleEndian.PutUint32(p[8:], 1)
	size := t.Sectors - 1
	if size > 0xffffffff {
		size = 0xffffffff
	}
	binary.LittleEndian.PutUint32(p[12:], uint32(size))
	m[510], m[511] = 0x55, 0xaa
	return m
}

// ReadGPT reads the primary table of a disk image and checks its
// checksums. It reads what WriteTo writes (and what other tools write
// with 128-byte entries).
func ReadGPT(r io.ReaderAt) (*GPT, error) {
	mbr := make([]byte, sectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("gpt: read MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa || mbr[446+4] != 0xee {
		return nil, errors.New("gpt: no protective MBR")
	}
	h := make([]byte, sectorSize)
	if _, err := r.ReadAt(h, sectorSize); err != nil {
		return nil, fmt.Errorf("gpt: read header: %w", err)
	}
	if string(h[0:8]) != "EFI PART" {
		return nil, errors.New("gpt: no GPT header in LBA 1")
	}
	size := binary.LittleEndian.Uint32(h[12:])
	if size < gptHeaderSize || size > sectorSize {
		return nil, fmt.Errorf("gpt: header size %d", size)
	}
	want := binary.LittleEndian.Uint32(h[16:])
	hc := append([]byte(nil), h[:size]...)
	binary.LittleEndian.PutUint32(hc[16:], 0)
	if got := crc32.ChecksumIEEE(hc); got != want {
		return nil, fmt.Errorf("gpt: header checksum %08x, want %08x", got, want)
	}
	n := binary.LittleEndian.Uint32(h[80:])
	esize := binary.LittleEndian.Uint32(h[84:])
	if esize != gptEntrySize || n > 1024 {
		return nil, fmt.Errorf("gpt: %d entries of %d bytes", n, esize)
	}
	entries := make([]byte, int(n)*gptEntrySize)
	if _, err := r.ReadAt(entries, int64(binary.LittleEndian.Uint64(h[72:]))*sectorSize); err != nil {
		return nil, fmt.Errorf("gpt: read entries: %w", err)
	}
	if got, want := crc32.ChecksumIEEE(entries), binary.LittleEndian.Uint32(h[88:]); got != want {
		return nil, fmt.Errorf("gpt: entries checksum %08x, want %08x", got, want)
	}
	t := &GPT{
		Sectors:       binary.LittleEndian.Uint64(h[32:]) + 1,
		BootCode:      mbr[:440],
		DiskSignature: binary.LittleEndian.Uint32(mbr[440:]),
	}
	copy(t.DiskGUID[:], h[56:72])
	for i := 0; i < int(n); i++ {
		e := entries[i*gptEntrySize : (i+1)*gptEntrySize]
		var p GPTPartition
		copy(p.Type[:], e[0:16])
		if p.Type == (GUID{}) {
			continue
		}
		copy(p.GUID[:], e[16:32])
		p.FirstLBA = binary.LittleEndian.Uint64(e[32:])
		p.LastLBA = binary.LittleEndian.Uint64(e[40:])
		p.Attributes = binary.LittleEndian.Uint64(e[48:])
		var name []uint16
		for j := 56; j+1 < gptEntrySize; j += 2 {
			u := binary.LittleEndian.Uint16(e[j:])
			if u == 0 {
				break
			}
			name = append(name, u)
		}
		p.Name = string(utf16.Decode(name))
		t.Partitions = append(t.Partitions, p)
	}
	return t, nil
}
