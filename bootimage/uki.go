package bootimage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
)

// A Unified Kernel Image is an EFI stub with the kernel, initramfs,
// command line and os-release added as PE sections; the stub finds them
// in its own image and boots the kernel. Debian 12 has no ukify, so the
// sections are laid out here:
//
//	headers | stub's sections | .osrel | .cmdline | .linux | .initrd
//
// Each new section starts on the next page after the one before it in
// memory and on the next FileAlignment boundary in the file, after
// everything the stub's file holds (its symbol table included). Only the
// section table, SizeOfImage, SizeOfInitializedData and the checksum of
// the stub's headers change.

// A PESection is a section to add to a PE image.
type PESection struct {
	Name string // at most 8 bytes
	Data []byte
}

// PE32+ header offsets (Microsoft PE/COFF specification).
const (
	peSigOffset     = 0x3c // in the DOS header: where "PE\0\0" is
	coffSize        = 20
	sectionSize     = 40
	optMagicPE32    = 0x20b
	optInitData     = 8
	optSectionAlign = 32
	optFileAlign    = 36
	optSizeOfImage  = 56
	optSizeOfHeader = 60
	optCheckSum     = 64
	// IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
	scnReadOnlyData = 0x00000040 | 0x40000000
	pageSize        = 4096
)

// ErrNoHeaderRoom is returned when the stub's headers have no room for
// the new section headers.
var ErrNoHeaderRoom = errors.New("no room for more section headers")

// AddPESections returns a copy of the PE32+ image with the sections
// appended. The image's sections and data stay where they are.
func AddPESections(image []byte, sections []PESection) ([]byte, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("pe: "+format, a...)
	}
	if len(image) < 0x40 || image[0] != 'M' || image[1] != 'Z' {
		return nil, bad("not a PE image: no MZ header")
	}
	pe := int(binary.LittleEndian.Uint32(image[peSigOffset:]))
	if pe+4+coffSize > len(image) || string(image[pe:pe+4]) != "PE\x00\x00" {
		return nil, bad("not a PE image: no PE signature at %#x", pe)
	}
	coff := pe + 4
	nsec := int(binary.LittleEndian.Uint16(image[coff+2:]))
	optSize := int(binary.LittleEndian.Uint16(image[coff+16:]))
	opt := coff + coffSize
	if opt+optSize > len(image) || optSize < optCheckSum+4 || binary.LittleEndian.Uint16(image[opt:]) != optMagicPE32 {
		return nil, bad("not a PE32+ image")
	}
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(image[off:]) }
	sectAlign, fileAlign := u32(opt+optSectionAlign), u32(opt+optFileAlign)
	headers := u32(opt + optSizeOfHeader)
	if sectAlign == 0 || fileAlign == 0 || sectAlign&(sectAlign-1) != 0 || fileAlign&(fileAlign-1) != 0 {
		return nil, bad("bad alignments: section %#x, file %#x", sectAlign, fileAlign)
	}
	table := opt + optSize
	tableEnd := table + nsec*sectionSize
	if tableEnd > len(image) {
		return nil, bad("the section table runs past the end of the file")
	}

	// Where the stub's sections end, in memory and in the file; the
	// first raw data bounds the room for headers.
	var memEnd uint64
	firstRaw := uint64(headers)
	existing := map[string]bool{}
	for i := 0; i < nsec; i++ {
		s := image[table+i*sectionSize:]
		existing[strings.TrimRight(string(s[0:8]), "\x00")] = true
		vsize, va := uint64(binary.LittleEndian.Uint32(s[8:])), uint64(binary.LittleEndian.Uint32(s[12:]))
		rawSize, raw := uint64(binary.LittleEndian.Uint32(s[16:])), uint64(binary.LittleEndian.Uint32(s[20:]))
		memEnd = max(memEnd, va+max(vsize, rawSize))
		if rawSize > 0 && raw < firstRaw {
			firstRaw = raw
		}
	}
	newEnd := uint64(tableEnd + len(sections)*sectionSize)
	if newEnd > firstRaw || newEnd > uint64(headers) {
		return nil, fmt.Errorf("pe: %w: %d sections need %d bytes of headers, the image has %d", ErrNoHeaderRoom, nsec+len(sections), newEnd, min(firstRaw, uint64(headers)))
	}

	memAlign := uint64(max(sectAlign, pageSize))
	va := alignUp(memEnd, memAlign)
	fileOff := alignUp(uint64(len(image)), uint64(fileAlign))
	total := fileOff
	for _, s := range sections {
		total += alignUp(uint64(len(s.Data)), uint64(fileAlign))
	}
	if total > 1<<32-1 {
		return nil, bad("a PE image of %d bytes is too large", total)
	}
	out := make([]byte, total)
	copy(out, image)
	var initData uint32
	for i, s := range sections {
		if len(s.Name) > 8 || s.Name == "" {
			return nil, bad("section name %q: 1 to 8 bytes", s.Name)
		}
		if existing[s.Name] {
			return nil, bad("the image already has a section %s", s.Name)
		}
		existing[s.Name] = true
		h := out[tableEnd+i*sectionSize:]
		copy(h[0:8], s.Name)
		rawSize := alignUp(uint64(len(s.Data)), uint64(fileAlign))
		binary.LittleEndian.PutUint32(h[8:], uint32(len(s.Data)))
		binary.LittleEndian.PutUint32(h[12:], uint32(va))
		binary.LittleEndian.PutUint32(h[16:], uint32(rawSize))
		binary.LittleEndian.PutUint32(h[20:], uint32(fileOff))
		binary.LittleEndian.PutUint32(h[36:], scnReadOnlyData)
		copy(out[fileOff:], s.Data)
		initData += uint32(rawSize)
		memEnd = va + uint64(len(s.Data))
		va = alignUp(memEnd, memAlign)
		fileOff += rawSize
	}
	if memEnd > 1<<32-1 {
		return nil, bad("an image of %d bytes in memory is too large", memEnd)
	}
	binary.LittleEndian.PutUint16(out[coff+2:], uint16(nsec+len(sections)))
	binary.LittleEndian.PutUint32(out[opt+optInitData:], u32(opt+optInitData)+initData)
	binary.LittleEndian.PutUint32(out[opt+optSizeOfImage:], uint32(alignUp(memEnd, uint64(sectAlign))))
	binary.LittleEndian.PutUint32(out[opt+optCheckSum:], PEChecksum(out, opt+optCheckSum))
	return out, nil
}

// PEChecksum is the checksum of a PE file (the algorithm of
// imagehlp's CheckSumMappedFile): the 16-bit one's-complement-style sum
// of the file, skipping the checksum field at sumOff, plus its length.
func PEChecksum(data []byte, sumOff int) uint32 {
	var sum uint64
	for i := 0; i < len(data); i += 2 {
		if i == sumOff || i == sumOff+2 {
			continue
		}
		w := uint64(data[i])
		if i+1 < len(data) {
			w |= uint64(data[i+1]) << 8
		}
		sum += w
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(data))
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

// OSRelease is the os-release text of the UKI's .osrel section, which
// boot menus such as systemd-boot show.
func (m Media) OSRelease() string {
	return fmt.Sprintf("NAME=%q\nID=kurma\nVERSION_ID=%q\nPRETTY_NAME=%q\n", menuTitle, m.version(), menuTitle+" "+m.version())
}

// BuildUKI writes a Unified Kernel Image to out, made from systemd's EFI
// stub (systemd-boot-efi). Firmware boots it directly as
// EFI/BOOT/BOOTX64.EFI or from a boot entry; the embedded command line
// is used unless the loader passes one (the stub takes the loader's
// when Secure Boot is off).
func BuildUKI(m Media, out string) error {
	if err := m.check(); err != nil {
		return err
	}
	if err := needFile(efiStub); err != nil {
		return err
	}
	stub, err := os.ReadFile(efiStub)
	if err != nil {
		return err
	}
	kernel, err := os.ReadFile(m.Kernel)
	if err != nil {
		return err
	}
	initrd, err := os.ReadFile(m.Initrd)
	if err != nil {
		return err
	}
	uki, err := AddPESections(stub, []PESection{
		{".osrel", []byte(m.OSRelease())},
		{".cmdline", []byte(m.Cmdline + "\x00")},
		{".linux", kernel},
		{".initrd", initrd},
	})
	if err != nil {
		return fmt.Errorf("%s: %w", efiStub, err)
	}
	return writeFile(out, uki, m)
}

// writeFile writes data through a temporary file and dates it at the
// build's epoch.
func writeFile(name string, data []byte, m Media) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, m.Epoch, m.Epoch); err != nil {
		_ = os.Remove(tmp) // the error that matters is Chtimes'
		return err
	}
	return os.Rename(tmp, name)
}
