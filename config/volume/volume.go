// Package volume reads files from ISO9660 and FAT volumes without
// mounting them, and finds a volume by its filesystem label. It is how
// Kurma reads a cloud-init NoCloud volume or an OpenStack config drive
// before anything is mounted, and as any user in tests.
//
// The data on a volume is outside input: every size and link read from it
// is bounded, and a volume that does not hold together is an error.
package volume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// The filesystem types Probe recognises.
const (
	TypeISO9660 = "iso9660"
	TypeVFAT    = "vfat"
)

// ErrUnknown means a device holds neither an ISO9660 nor a FAT filesystem.
var ErrUnknown = errors.New("not an ISO9660 or FAT filesystem")

// Info is what Probe tells of a volume.
type Info struct {
	Type  string // TypeISO9660 or TypeVFAT
	Label string // the filesystem label, "" when it has none
}

// maxDir bounds the bytes of one directory, maxHops the links followed
// (Rock Ridge continuation areas).
const (
	maxDir  = 4 << 20
	maxHops = 16
)

// Probe reads the type and label of the filesystem in r.
func Probe(r io.ReaderAt) (Info, error) {
	_, info, err := Open(r)
	return info, err
}

// Open returns the files of the ISO9660 or FAT filesystem in r. File
// names are matched as the filesystem does: ISO9660 names as written
// (Rock Ridge or Joliet names when present), FAT names without regard to
// case.
func Open(r io.ReaderAt) (fs.FS, Info, error) {
	if isISO(r) {
		v, label, err := openISO(r)
		if err != nil {
			return nil, Info{}, fmt.Errorf("iso9660: %w", err)
		}
		return v, Info{Type: TypeISO9660, Label: label}, nil
	}
	if isFAT(r) {
		v, label, err := openFAT(r)
		if err != nil {
			return nil, Info{}, fmt.Errorf("fat: %w", err)
		}
		return v, Info{Type: TypeVFAT, Label: label}, nil
	}
	return nil, Info{}, ErrUnknown
}

// readFull reads len(b) bytes at off; a short read is an error.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(b), off, err)
}
