package bootimage

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

// minimalPE is a PE32+ image with one section and room in its headers
// for at least room more section headers.
func minimalPE(room int) []byte {
	const peOff = 0x40
	optSize := 240
	table := peOff + 4 + coffSize + optSize
	headers := int(alignUp(uint64(table+sectionSize*(1+room)), 0x200))
	img := make([]byte, headers+0x200)
	img[0], img[1] = 'M', 'Z'
	binary.LittleEndian.PutUint32(img[peSigOffset:], peOff)
	copy(img[peOff:], "PE\x00\x00")
	coff := peOff + 4
	binary.LittleEndian.PutUint16(img[coff:], 0x8664)
	binary.LittleEndian.PutUint16(img[coff+2:], 1)
	binary.LittleEndian.PutUint16(img[coff+16:], uint16(optSize))
	binary.LittleEndian.PutUint16(img[coff+18:], 0x0206)
	opt := coff + coffSize
	binary.LittleEndian.PutUint16(img[opt:], optMagicPE32)
	binary.LittleEndian.PutUint32(img[opt+optSectionAlign:], 0x1000)
	binary.LittleEndian.PutUint32(img[opt+optFileAlign:], 0x200)
	binary.LittleEndian.PutUint32(img[opt+optSizeOfImage:], 0x2000)
	binary.LittleEndian.PutUint32(img[opt+optSizeOfHeader:], uint32(headers))
	binary.LittleEndian.PutUint32(img[opt+108:], 16) // NumberOfRvaAndSizes
	s := img[table:]
	copy(s, ".text")
	binary.LittleEndian.PutUint32(s[8:], 0x10)
	binary.LittleEndian.PutUint32(s[12:], 0x1000)
	binary.LittleEndian.PutUint32(s[16:], 0x200)
	binary.LittleEndian.PutUint32(s[20:], uint32(headers))
	binary.LittleEndian.PutUint32(s[36:], 0x60000020)
	copy(img[headers:], "\xc3 text")
	return img
}

func TestAddPESections(t *testing.T) {
	stubs := map[string][]byte{"minimal": minimalPE(4)}
	if stub, err := os.ReadFile(efiStub); err == nil {
		stubs["systemd stub"] = stub
	} else {
		t.Logf("%v: testing with a minimal PE only (package systemd-boot-efi)", err)
	}
	kernel := bytes.Repeat([]byte("K"), 5000)
	add := []PESection{
		{".osrel", []byte("ID=kurma\n")},
		{".cmdline", []byte("console=ttyS0\x00")},
		{".linux", kernel},
		{".initrd", []byte("initrd")},
	}
	for name, stub := range stubs {
		t.Run(name, func(t *testing.T) {
			out, err := AddPESections(stub, add)
			if err != nil {
				t.Fatal(err)
			}
			f, err := pe.NewFile(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			oh := f.OptionalHeader.(*pe.OptionalHeader64)
			if !bytes.Equal(out[oh.SizeOfHeaders:len(stub)], stub[oh.SizeOfHeaders:]) {
				t.Errorf("the stub's sections changed")
			}
			n := len(f.Sections)
			if n < len(add)+1 {
				t.Fatalf("%d sections", n)
			}
			var prevEnd uint32
			for i, s := range f.Sections {
				if s.VirtualAddress < prevEnd {
					t.Errorf("section %s at %#x overlaps the one before, which ends at %#x", s.Name, s.VirtualAddress, prevEnd)
				}
				prevEnd = s.VirtualAddress + s.VirtualSize
				if i < n-len(add) {
					continue
				}
				want := add[i-(n-len(add))]
				if s.Name != want.Name {
					t.Errorf("section %d is %s, want %s", i, s.Name, want.Name)
				}
				data, err := s.Data()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(data[:s.VirtualSize], want.Data) {
					t.Errorf("section %s holds %q…", s.Name, data[:min(len(data), 16)])
				}
				if s.VirtualAddress%pageSize != 0 || s.Offset%oh.FileAlignment != 0 || s.Characteristics != scnReadOnlyData {
					t.Errorf("section %s: address %#x, offset %#x, characteristics %#x", s.Name, s.VirtualAddress, s.Offset, s.Characteristics)
				}
			}
			if oh.SizeOfImage < prevEnd || oh.SizeOfImage%oh.SectionAlignment != 0 {
				t.Errorf("SizeOfImage %#x, the last section ends at %#x", oh.SizeOfImage, prevEnd)
			}
			sumOff := int(binary.LittleEndian.Uint32(out[peSigOffset:])) + 4 + coffSize + optCheckSum
			if got := PEChecksum(out, sumOff); got != oh.CheckSum {
				t.Errorf("checksum %#x, header says %#x", got, oh.CheckSum)
			}
		})
	}
}

// TestPEChecksum checks the checksum against the one the linker wrote
// into systemd's stub.
func TestPEChecksum(t *testing.T) {
	stub, err := os.ReadFile(efiStub)
	if err != nil {
		t.Skipf("%v (package systemd-boot-efi)", err)
	}
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		t.Fatal(err)
	}
	want := f.OptionalHeader.(*pe.OptionalHeader64).CheckSum
	sumOff := int(binary.LittleEndian.Uint32(stub[peSigOffset:])) + 4 + coffSize + optCheckSum
	if got := PEChecksum(stub, sumOff); got != want {
		t.Errorf("PEChecksum = %#x, the stub says %#x", got, want)
	}
}

func TestAddPESectionsRejects(t *testing.T) {
	img := minimalPE(1)
	var tooMany []PESection
	for _, n := range "abcdefghij" {
		tooMany = append(tooMany, PESection{"." + string(n), nil})
	}
	tests := []struct {
		name  string
		image []byte
		add   []PESection
		want  string
	}{
		{"no room", img, tooMany, ErrNoHeaderRoom.Error()},
		{"duplicate", img, []PESection{{".text", nil}}, "already has a section .text"},
		{"long name", img, []PESection{{".toolongname", nil}}, "1 to 8 bytes"},
		{"not PE", []byte(strings.Repeat("x", 100)), nil, "no MZ header"},
		{"PE32", func() []byte {
			b := append([]byte(nil), img...)
			binary.LittleEndian.PutUint16(b[0x40+4+coffSize:], 0x10b)
			return b
		}(), nil, "not a PE32+"},
	}
	for _, tc := range tests {
		_, err := AddPESections(tc.image, tc.add)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := AddPESections(img, tooMany); !errors.Is(err, ErrNoHeaderRoom) {
		t.Errorf("no room: %v is not ErrNoHeaderRoom", err)
	}
}

func TestOSRelease(t *testing.T) {
	got := testMedia().OSRelease()
	want := "NAME=\"Kurma\"\nID=kurma\nVERSION_ID=\"1.2\"\nPRETTY_NAME=\"Kurma 1.2\"\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
