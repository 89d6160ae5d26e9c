package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/appc/spec/schema"
	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/fetch"
	"github.com/kurmaos/kurma/containers/rootfs"
)

// Options configure a Store. The zero value works: default limits, device
// nodes refused, nothing in use, no remote retrieval.
type Options struct {
	// Limits bound every image read (size, manifest, entries).
	Limits aci.Limits
	// Devices says what happens to device nodes in images.
	Devices rootfs.DevicePolicy
	// InUse returns the IDs of the images that pods use: every image a
	// pod's root filesystem was made from (the IDs of its Layers). Remove
	// refuses them and GC keeps them. It must not call back into the
	// Store. Nil means no image is in use.
	InUse func(ctx context.Context) ([]string, error)
	// Fetcher retrieves images for Fetch; nil allows no remote retrieval.
	Fetcher *fetch.Fetcher
	// Logf reports what the store repaired on its own (stray files,
	// broken entries). Nil discards it.
	Logf func(format string, args ...any)
	// Now is the clock (a seam for tests); nil is time.Now.
	Now func() time.Time
}

// Image is an image in the store. Its fields are read-only.
type Image struct {
	// ID is "sha512-" and the hex SHA-512 of the uncompressed archive.
	ID       string
	Manifest *schema.ImageManifest
	// Size is the size in bytes of the uncompressed archive.
	Size        int64
	ImportedAt  time.Time
	Source      string
	Compression aci.Compression
	// RootFS is the directory holding the image's own files (without its
	// dependencies). Nothing may write to it.
	RootFS string
}

// Name is the image's name from its manifest.
func (i *Image) Name() string { return i.Manifest.Name.String() }

// Errors of the store, for errors.Is.
var (
	ErrNotFound  = errors.New("image not found")
	ErrAmbiguous = errors.New("image ID prefix matches more than one image")
	ErrInUse     = errors.New("image is in use")
	ErrMismatch  = errors.New("image does not match what was asked for")
	ErrLocked    = errors.New("image store is used by another process")
)

// Store is a content-addressed store of ACIs. All its methods are safe
// for concurrent use.
//
// On disk, under its directory (mode 0700):
//
//	lock                 flock(2)ed while a process has the store open
//	images/<id>/         one directory per image, renamed in when complete
//	    manifest         the manifest's exact bytes
//	    info.json        size, import time, source, compression
//	    rootfs/          the image's own files
//	trees/<key>/         rendered root filesystems (image plus dependencies)
//	    layers           the IDs it was rendered from, lowest first
//	    rootfs/
//	tmp/                 imports, downloads and removals in progress;
//	                     emptied by Open
type Store struct {
	dir  string
	opts Options
	lock *os.File

	mu     sync.RWMutex      // guards images, busy and trees
	images map[string]*Image // by ID
	busy   map[string]int    // images being copied from, by ID
	trees  map[string]*sync.Mutex
}

var idPattern = regexp.MustCompile(`^sha512-[0-9a-f]{128}$`)

// Open opens (creating it if needed) the store in dir. It fails if
// another process has it open. Leftovers of interrupted imports and
// removals are deleted.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	s := &Store{dir: dir, opts: opts, images: map[string]*Image{}, busy: map[string]int{}, trees: map[string]*sync.Mutex{}}
	for _, d := range []string{dir, s.path("images"), s.path("trees"), s.path("tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
		// Only root reads the store: host users must not reach setuid
		// files in it (THREATS.md 37).
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	lock, err := os.OpenFile(s.path("lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("image store %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("image store %s: lock: %w", dir, err)
	}
	s.lock = lock
	if err := s.clean(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.load(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the store's lock.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// clean removes everything under tmp/: work of a process that stopped.
func (s *Store) clean() error {
	ents, err := os.ReadDir(s.path("tmp"))
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	for _, e := range ents {
		s.opts.Logf("image store: removing leftover %s", e.Name())
		if err := os.RemoveAll(s.path("tmp", e.Name())); err != nil {
			return fmt.Errorf("image store: remove leftover: %w", err)
		}
	}
	return nil
}

type info struct {
	ID          string          `json:"id"`
	Size        int64           `json:"size"`
	ImportedAt  time.Time       `json:"importedAt"`
	Source      string          `json:"source,omitempty"`
	Compression aci.Compression `json:"compression"`
}

// load reads the images. An entry that cannot be read is moved out of the
// way and reported: one broken image must not stop the machine.
func (s *Store) load() error {
	ents, err := os.ReadDir(s.path("images"))
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	for _, e := range ents {
		img, err := s.readImage(e.Name())
		if err != nil {
			s.opts.Logf("image store: dropping broken image %s: %v", e.Name(), err)
			dir, err := s.moveAside(s.path("images", e.Name()))
			if err == nil {
				err = os.RemoveAll(dir)
			}
			if err != nil {
				return fmt.Errorf("image store: %w", err)
			}
			continue
		}
		s.images[img.ID] = img
	}
	return nil
}

func (s *Store) readImage(id string) (*Image, error) {
	if !idPattern.MatchString(id) {
		return nil, errors.New("not an image ID")
	}
	dir := s.path("images", id)
	data, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		return nil, err
	}
	var in info
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("info.json: %w", err)
	}
	if in.ID != id {
		return nil, fmt.Errorf("info.json names %q", in.ID)
	}
	mdata, err := os.ReadFile(filepath.Join(dir, "manifest"))
	if err != nil {
		return nil, err
	}
	m, err := aci.ParseManifest(mdata)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(filepath.Join(dir, "rootfs")); err != nil {
		return nil, err
	}
	return &Image{ID: id, Manifest: m, Size: in.Size, ImportedAt: in.ImportedAt, Source: in.Source, Compression: in.Compression, RootFS: filepath.Join(dir, "rootfs")}, nil
}
