package aci

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz"
)

// Compression is the compression of an archive, found from its first bytes.
type Compression string

// The compressions of ACIs.
const (
	None  Compression = "none"
	Gzip  Compression = "gzip"
	Bzip2 Compression = "bzip2"
	XZ    Compression = "xz"
)

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// Decompress detects the compression of r and returns a reader of the
// uncompressed bytes. Anything that is not gzip, bzip2 or xz is read as is
// (and must then be a tar archive). The xz dictionary is checked against
// maxXZDict before any memory is given to it.
func Decompress(r io.Reader, maxXZDict int64) (io.Reader, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(12 + 1024) // an xz stream header and a block header at most
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, None, fmt.Errorf("read archive: %w: %w", ErrBadArchive, err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("gzip: %w: %w", ErrBadArchive, err)
		}
		return &namedReader{zr, Gzip}, Gzip, nil
	case bytes.HasPrefix(head, bzip2Magic):
		return &namedReader{bzip2.NewReader(br), Bzip2}, Bzip2, nil
	case bytes.HasPrefix(head, xzMagic):
		if err := checkXZDict(head, maxXZDict); err != nil {
			return nil, XZ, err
		}
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, XZ, fmt.Errorf("xz: %w: %w", ErrBadArchive, err)
		}
		return &namedReader{zr, XZ}, XZ, nil
	}
	return br, None, nil
}

// checkXZDict reads the LZMA2 dictionary size from the first block header
// of an xz stream (see the .xz file format, sections 2.1.1 and 5.3.1).
// Later blocks are checked by nobody: the decompressor allocates their
// dictionary lazily, and only the bytes it writes, which the image size
// limit bounds, ever become resident.
func checkXZDict(head []byte, limit int64) error {
	const streamHeader = 12
	if len(head) < streamHeader+2 || head[streamHeader] == 0 {
		return nil // no block: the decoder reports what is wrong
	}
	size := (int(head[streamHeader]) + 1) * 4
	if len(head) < streamHeader+size {
		return errors.New("xz: truncated block header")
	}
	bh := head[streamHeader+1 : streamHeader+size]
	flags := bh[0]
	p := bh[1:]
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			_, n := binary.Uvarint(p)
			if n <= 0 {
				return errors.New("xz: bad block header")
			}
			p = p[n:]
		}
	}
	for range int(flags&3) + 1 {
		id, n := binary.Uvarint(p)
		if n <= 0 {
			return errors.New("xz: bad filter flags")
		}
		p = p[n:]
		propSize, n := binary.Uvarint(p)
		if n <= 0 || uint64(len(p)-n) < propSize {
			return errors.New("xz: bad filter properties")
		}
		props := p[n : n+int(propSize)]
		p = p[n+int(propSize):]
		if id == 0x21 && len(props) == 1 { // LZMA2
			if d := lzma2Dict(props[0]); d > limit {
				return tooLarge(fmt.Sprintf("xz: dictionary of %d bytes", d), limit)
			}
		}
	}
	return nil
}

func lzma2Dict(b byte) int64 {
	bits := int64(b & 0x3f)
	if bits >= 40 {
		return 1<<32 - 1
	}
	return (2 | bits&1) << (bits/2 + 11)
}

// namedReader says which decompressor failed.
type namedReader struct {
	r io.Reader
	c Compression
}

func (n *namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", n.c, err)
	}
	return k, err
}
