package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fakeBzImage lays out a header and an xz payload as the boot protocol does.
func fakeBzImage(t *testing.T, payload []byte) []byte {
	t.Helper()
	data := make([]byte, 5*512)
	data[offSetupSects] = 4
	copy(data[offHeaderMagic:], headerMagic)
	binary.LittleEndian.PutUint16(data[offVersion:], 0x020f)
	binary.LittleEndian.PutUint32(data[offPayloadOffset:], 16)
	binary.LittleEndian.PutUint32(data[offPayloadLength:], uint32(len(payload)))
	data = append(data, make([]byte, 16)...)
	data = append(data, payload...)
	return append(data, 0, 0, 0, 0) // the decompressor's size trailer
}

func TestVmlinuxFromXZPayload(t *testing.T) {
	want := append([]byte{0x7f, 'E', 'L', 'F'}, bytes.Repeat([]byte("kernel"), 1000)...)
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz-utils is not installed: run scripts/setup")
	}
	var comp bytes.Buffer
	cmd := exec.Command("xz", "--x86", "--lzma2", "--stdout")
	cmd.Stdin = bytes.NewReader(want)
	cmd.Stdout = &comp
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	b, err := ParseBzImage(fakeBzImage(t, comp.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Vmlinux()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("vmlinux differs: got %d bytes, want %d", len(got), len(want))
	}
}

func TestParseBzImageRejects(t *testing.T) {
	if _, err := ParseBzImage([]byte("not a kernel")); !errors.Is(err, ErrNotBzImage) {
		t.Errorf("short input: got %v, want ErrNotBzImage", err)
	}
	b, err := ParseBzImage(fakeBzImage(t, []byte("plain text payload")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Vmlinux(); err == nil {
		t.Error("an uncompressed payload was accepted")
	}
}

// TestDebianKernel extracts the kernel that scripts/setup fetched, when it
// is there, and checks it is an x86-64 ELF with the PVH note QEMU needs.
func TestDebianKernel(t *testing.T) {
	matches, _ := filepath.Glob("../build/kernel/*/vmlinuz")
	if len(matches) == 0 {
		t.Skip("no kernel in build/kernel: run scripts/setup")
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBzImage(data)
	if err != nil {
		t.Fatal(err)
	}
	if v := b.KernelVersion(); v == "" {
		t.Error("no kernel version string in the header")
	}
	vmlinux, err := b.Vmlinux()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("machine = %v, want x86-64", f.Machine)
	}
	if !hasPVHNote(f) {
		t.Error("vmlinux has no XEN_ELFNOTE_PHYS32_ENTRY note: QEMU cannot boot it through PVH")
	}
}

func hasPVHNote(f *elf.File) bool {
	const xenElfNotePhys32Entry = 18
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			return false
		}
		for len(data) >= 12 {
			namesz := binary.LittleEndian.Uint32(data[0:])
			descsz := binary.LittleEndian.Uint32(data[4:])
			typ := binary.LittleEndian.Uint32(data[8:])
			name := data[12:min(len(data), 12+int(namesz))]
			if typ == xenElfNotePhys32Entry && bytes.HasPrefix(name, []byte("Xen")) {
				return true
			}
			next := 12 + align4(int(namesz)) + align4(int(descsz))
			if next > len(data) {
				break
			}
			data = data[next:]
		}
	}
	return false
}

func align4(n int) int { return (n + 3) &^ 3 }
