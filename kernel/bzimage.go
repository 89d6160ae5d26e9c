package kernel

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
)

// Offsets in the x86 boot protocol header (Documentation/arch/x86/boot.rst).
const (
	offSetupSects    = 0x1f1
	offHeaderMagic   = 0x202
	offVersion       = 0x206
	offKernelVersion = 0x20e
	offPayloadOffset = 0x248
	offPayloadLength = 0x24c
	headerMagic      = "HdrS"
	minVersion       = 0x0208 // the first protocol with payload_offset
)

var (
	magicXZ   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicGzip = []byte{0x1f, 0x8b}
	magicELF  = []byte{0x7f, 'E', 'L', 'F'}
)

// ErrNotBzImage is returned for data that does not start with an x86
// boot protocol header.
var ErrNotBzImage = errors.New("not an x86 bzImage")

// BzImage is a parsed x86 bzImage.
type BzImage struct {
	data          []byte
	setupSects    int
	version       uint16
	payloadOffset uint32
	payloadLength uint32
}

// ParseBzImage reads the boot protocol header of a bzImage.
func ParseBzImage(data []byte) (*BzImage, error) {
	if len(data) < offPayloadLength+4 || string(data[offHeaderMagic:offHeaderMagic+4]) != headerMagic {
		return nil, ErrNotBzImage
	}
	b := &BzImage{
		data:          data,
		setupSects:    int(data[offSetupSects]),
		version:       binary.LittleEndian.Uint16(data[offVersion:]),
		payloadOffset: binary.LittleEndian.Uint32(data[offPayloadOffset:]),
		payloadLength: binary.LittleEndian.Uint32(data[offPayloadLength:]),
	}
	if b.setupSects == 0 {
		b.setupSects = 4 // as the boot protocol says
	}
	if b.version < minVersion {
		return nil, fmt.Errorf("bzImage boot protocol %d.%02d is older than 2.08: no payload offset", b.version>>8, b.version&0xff)
	}
	return b, nil
}

// Payload returns the compressed kernel inside the bzImage.
func (b *BzImage) Payload() ([]byte, error) {
	start := (b.setupSects+1)*512 + int(b.payloadOffset)
	end := start + int(b.payloadLength)
	if start < 0 || end > len(b.data) || start >= end {
		return nil, fmt.Errorf("bzImage payload %d..%d lies outside the %d-byte file", start, end, len(b.data))
	}
	return b.data[start:end], nil
}

// KernelVersion returns the version string the header points to, such as
// "6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP ...".
func (b *BzImage) KernelVersion() string {
	off := int(binary.LittleEndian.Uint16(b.data[offKernelVersion:])) + 0x200
	if off <= 0x200 || off >= len(b.data) {
		return ""
	}
	s := b.data[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}

// Vmlinux decompresses the payload into the uncompressed ELF kernel.
func (b *BzImage) Vmlinux() ([]byte, error) {
	payload, err := b.Payload()
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch {
	case bytes.HasPrefix(payload, magicXZ):
		// The kernel's xz streams use the x86 BCJ filter, which no Go xz
		// reader implements: decompress with xz-utils (a build-time tool).
		return unxz(payload)
	case bytes.HasPrefix(payload, magicGzip):
		if r, err = gzip.NewReader(bytes.NewReader(payload)); err != nil {
			return nil, fmt.Errorf("bzImage payload: gzip: %w", err)
		}
	default:
		return nil, fmt.Errorf("bzImage payload compression % x is not supported (xz and gzip are)", payload[:min(len(payload), 6)])
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("bzImage payload: decompress: %w", err)
	}
	if !bytes.HasPrefix(out, magicELF) {
		return nil, errors.New("bzImage payload does not decompress to an ELF file")
	}
	return out, nil
}

func unxz(payload []byte) ([]byte, error) {
	var out, stderr bytes.Buffer
	cmd := exec.Command("xz", "--decompress", "--stdout", "--single-stream")
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("bzImage payload: xz: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if !bytes.HasPrefix(out.Bytes(), magicELF) {
		return nil, errors.New("bzImage payload does not decompress to an ELF file")
	}
	return out.Bytes(), nil
}
