package aci

import (
	"errors"
	"fmt"
)

// Limits bound the resources an image may use while it is read. A zero
// field takes its default.
type Limits struct {
	// MaxImageBytes caps the uncompressed archive, and separately the sum
	// of the file sizes its entries declare (sparse files count at their
	// full size). Default 8 GiB.
	MaxImageBytes int64
	// MaxManifestBytes caps the manifest, checked before it is decoded.
	// Default 1 MiB.
	MaxManifestBytes int64
	// MaxEntries caps the number of archive entries. Default 1<<20.
	MaxEntries int
	// MaxXZDictBytes caps the dictionary an xz stream may ask for, which
	// is the decompressor's memory. Default 64 MiB (what xz -9 uses).
	MaxXZDictBytes int64
}

// Default limits.
const (
	DefaultMaxImageBytes    = 8 << 30
	DefaultMaxManifestBytes = 1 << 20
	DefaultMaxEntries       = 1 << 20
	DefaultMaxXZDictBytes   = 64 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxImageBytes <= 0 {
		l.MaxImageBytes = DefaultMaxImageBytes
	}
	if l.MaxManifestBytes <= 0 {
		l.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxXZDictBytes <= 0 {
		l.MaxXZDictBytes = DefaultMaxXZDictBytes
	}
	return l
}

// ErrBadArchive is wrapped by the errors for bytes that are not a valid
// (compressed) tar archive.
var ErrBadArchive = errors.New("not a valid archive")

// ErrTooLarge is wrapped by the errors for an image over one of its limits.
var ErrTooLarge = errors.New("over the configured limit")

func tooLarge(what string, limit int64) error {
	return fmt.Errorf("%s: %w of %d", what, ErrTooLarge, limit)
}
