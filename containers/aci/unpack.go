package aci

import (
	"archive/tar"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/appc/spec/schema"

	"github.com/kurmaos/kurma/containers/rootfs"
)

// Options control Unpack.
type Options struct {
	Limits Limits
	// Root says how rootfs entries are written (devices, ownership).
	Root rootfs.Options
	// Check, when set, is called with the manifest as soon as it has been
	// read and validated; its error stops the unpack. Images usually put
	// the manifest first, so a wrong image fails before its files are
	// written.
	Check func(*schema.ImageManifest) error
}

// Result describes an unpacked image.
type Result struct {
	// ID is "sha512-" and the hex SHA-512 of the uncompressed archive.
	ID string
	// Manifest is the validated manifest; ManifestJSON its exact bytes.
	Manifest     *schema.ImageManifest
	ManifestJSON []byte
	// Size is the number of bytes of the uncompressed archive.
	Size        int64
	Compression Compression
}

// EntryError is an archive entry that could not be read or written.
type EntryError struct {
	Name string
	Err  error
}

func (e *EntryError) Error() string {
	name := e.Name
	if len(name) > 200 {
		name = name[:200] + "..."
	}
	return fmt.Sprintf("entry %q: %v", name, e.Err)
}
func (e *EntryError) Unwrap() error { return e.Err }

// Unpack reads an ACI from r and writes its root filesystem into dir, an
// existing directory (normally empty). With dir == "" nothing is written:
// the archive is only checked and hashed. On error, dir may hold part of
// the image: the caller unpacks into a staging directory and removes it.
func Unpack(ctx context.Context, r io.Reader, dir string, opts Options) (*Result, error) {
	lim := opts.Limits.withDefaults()
	u := &unpacker{ctx: ctx, lim: lim, opts: opts, h: sha512.New()}
	dr, comp, err := Decompress(&ctxReader{ctx, r}, lim.MaxXZDictBytes)
	if err != nil {
		return nil, err
	}
	u.src = &capReader{r: dr, left: lim.MaxImageBytes, limit: lim.MaxImageBytes}
	if dir != "" {
		if u.root, err = rootfs.Open(dir, opts.Root); err != nil {
			return nil, err
		}
	}
	err = u.run()
	if u.root != nil {
		if cerr := u.root.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return nil, err
	}
	return &Result{
		ID:           "sha512-" + hex.EncodeToString(u.h.Sum(nil)),
		Manifest:     u.manifest,
		ManifestJSON: u.manifestJSON,
		Size:         u.src.limit - u.src.left,
		Compression:  comp,
	}, nil
}

// ReadManifest returns the manifest of the ACI in r, reading no further
// than it. Nothing is written.
func ReadManifest(ctx context.Context, r io.Reader, limits Limits) (*schema.ImageManifest, error) {
	lim := limits.withDefaults()
	dr, _, err := Decompress(&ctxReader{ctx, r}, lim.MaxXZDictBytes)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(&capReader{r: dr, left: lim.MaxImageBytes, limit: lim.MaxImageBytes})
	for range lim.MaxEntries {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, ErrNoManifest
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w: %w", ErrBadArchive, err)
		}
		name, err := rootfs.Clean(h.Name)
		if err != nil {
			return nil, &EntryError{h.Name, err}
		}
		if name == "manifest" {
			m, _, err := readManifest(tr, h, lim)
			return m, err
		}
	}
	return nil, tooLarge("archive entries", int64(lim.MaxEntries))
}

type unpacker struct {
	ctx          context.Context
	lim          Limits
	opts         Options
	h            hash.Hash
	src          *capReader
	root         *rootfs.Root
	manifest     *schema.ImageManifest
	manifestJSON []byte
}

func (u *unpacker) run() error {
	in := io.TeeReader(u.src, u.h)
	tr := tar.NewReader(in)
	var entries int
	var declared int64 // file bytes the entries declare
	for {
		if err := u.ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w: %w", ErrBadArchive, err)
		}
		if entries++; entries > u.lim.MaxEntries {
			return tooLarge("archive entries", int64(u.lim.MaxEntries))
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if h.Size > 0 && h.Typeflag == tar.TypeReg {
			if declared += h.Size; declared > u.lim.MaxImageBytes || declared < 0 {
				return &EntryError{h.Name, tooLarge("files of the image", u.lim.MaxImageBytes)}
			}
		}
		if err := u.entry(tr, h); err != nil {
			return &EntryError{h.Name, err}
		}
	}
	// Trailing bytes after the end of the archive are part of the file,
	// so part of its ID.
	if _, err := io.Copy(io.Discard, in); err != nil {
		return fmt.Errorf("read archive: %w: %w", ErrBadArchive, err)
	}
	if u.manifest == nil {
		return ErrNoManifest
	}
	return nil
}

func (u *unpacker) entry(tr *tar.Reader, h *tar.Header) error {
	name, err := rootfs.Clean(h.Name)
	if err != nil {
		return err
	}
	switch {
	case name == "manifest":
		if u.manifest != nil {
			return errors.New("second manifest")
		}
		m, data, err := readManifest(tr, h, u.lim)
		if err != nil {
			return err
		}
		if u.opts.Check != nil {
			if err := u.opts.Check(m); err != nil {
				return err
			}
		}
		u.manifest, u.manifestJSON = m, data
		return nil
	case name == "rootfs" || strings.HasPrefix(name, "rootfs/"):
		if u.root == nil {
			return nil
		}
		rh := *h
		rh.Name = strings.TrimPrefix(strings.TrimPrefix(name, "rootfs"), "/")
		if h.Typeflag == tar.TypeLink {
			target, err := rootfs.Clean(h.Linkname)
			if err != nil {
				return fmt.Errorf("hard link target: %w", err)
			}
			if !strings.HasPrefix(target, "rootfs/") {
				return fmt.Errorf("hard link to %q, outside rootfs/", h.Linkname)
			}
			rh.Linkname = strings.TrimPrefix(target, "rootfs/")
		}
		return u.root.Create(&rh, tr)
	}
	return errors.New("unexpected entry outside rootfs/ (an ACI holds only manifest and rootfs/)")
}

func readManifest(tr *tar.Reader, h *tar.Header, lim Limits) (*schema.ImageManifest, []byte, error) {
	if h.Typeflag != tar.TypeReg {
		return nil, nil, errors.New("manifest is not a regular file")
	}
	if h.Size > lim.MaxManifestBytes {
		return nil, nil, tooLarge(fmt.Sprintf("manifest of %d bytes", h.Size), lim.MaxManifestBytes)
	}
	data, err := io.ReadAll(io.LimitReader(tr, lim.MaxManifestBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("read manifest: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, nil, err
	}
	return m, data, nil
}

// capReader fails once more than limit bytes have been read, or when its
// source stops making progress (a decompressor answering 0, nil forever
// would otherwise spin io.ReadFull).
type capReader struct {
	r           io.Reader
	left, limit int64
	idle        int
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more says whether there is more.
		var b [1]byte
		if n, _ := io.ReadFull(c.r, b[:]); n > 0 {
			return 0, tooLarge("uncompressed image", c.limit)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if n == 0 && err == nil {
		if c.idle++; c.idle > 100 {
			return 0, io.ErrNoProgress
		}
	} else {
		c.idle = 0
	}
	return n, err
}

// ctxReader stops reading once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
