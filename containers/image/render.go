package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/rootfs"
)

// Bounds of a dependency graph.
const (
	maxDepth  = 32   // longest chain of dependencies
	maxLayers = 1024 // layers of one rendering, repeats included
)

// Layer is one image in the rendering of another.
type Layer struct {
	Image *Image
	// Filters are the pathWhitelists that apply to this layer: its own and
	// those of the images depending on it, on its path from the top image.
	// A file is kept when every filter lists it (its parent directories
	// are kept with it). None means everything is kept.
	Filters [][]string
}

// Layers resolves the dependencies of image id as the appc spec orders
// them (ace.md, Filesystem Setup): depth first, each dependency's own
// dependencies before it, and the image itself last, so that a later
// layer overwrites an earlier one. For A -> [B, C] and C -> [D] that is
// B, D, C, A. A dependency with an imageID is that exact image; otherwise
// it is found by name and labels (see Find). An image reached by two paths
// appears twice, with the filters of each path.
func (s *Store) Layers(ctx context.Context, id string) ([]Layer, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.layers(id)
}

func (s *Store) layers(id string) ([]Layer, error) {
	top, err := s.get(id)
	if err != nil {
		return nil, err
	}
	var out []Layer
	var visit func(img *Image, filters [][]string, stack []string) error
	visit = func(img *Image, filters [][]string, stack []string) error {
		if slices.Contains(stack, img.ID) {
			return fmt.Errorf("dependency cycle through %s (%s)", img.Name(), img.ID)
		}
		if len(stack) >= maxDepth {
			return fmt.Errorf("dependencies of %s nest deeper than %d", top.Name(), maxDepth)
		}
		if len(out) >= maxLayers {
			return fmt.Errorf("dependencies of %s make more than %d layers", top.Name(), maxLayers)
		}
		if wl := img.Manifest.PathWhitelist; len(wl) > 0 {
			filters = append(filters[:len(filters):len(filters)], wl)
		}
		stack = append(stack, img.ID)
		for _, d := range img.Manifest.Dependencies {
			dep, err := s.resolve(d)
			if err != nil {
				return fmt.Errorf("dependency %s of %s: %w", d.ImageName, img.Name(), err)
			}
			if err := visit(dep, filters, stack); err != nil {
				return err
			}
		}
		out = append(out, Layer{Image: img, Filters: filters})
		return nil
	}
	if err := visit(top, nil, nil); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) resolve(d types.Dependency) (*Image, error) {
	if d.ImageID == nil || d.ImageID.Empty() {
		return s.find(d.ImageName.String(), d.Labels)
	}
	img, err := s.get(d.ImageID.String())
	if err != nil {
		return nil, err
	}
	if img.Name() != d.ImageName.String() {
		return nil, fmt.Errorf("%w: %s is named %s", ErrMismatch, img.ID, img.Name())
	}
	return img, nil
}

// acquire resolves the layers of id and marks their images busy, so that
// Remove and GC leave them alone until release is called.
func (s *Store) acquire(id string) (layers []Layer, release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	layers, err = s.layers(id)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range layers {
		s.busy[l.Image.ID]++
	}
	return layers, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, l := range layers {
			if s.busy[l.Image.ID]--; s.busy[l.Image.ID] <= 0 {
				delete(s.busy, l.Image.ID)
			}
		}
	}, nil
}

// Render writes the root filesystem of image id, its dependencies
// included, into dest, which must be empty or not exist. Layers are
// copied lowest first; a later one replaces what is at a path (a
// directory over a directory merges; a symlink is never followed), and
// the pathWhitelists filter them. The copy is written through package
// rootfs like an import. Pods use Lowers instead where the kernel has
// overlayfs.
func (s *Store) Render(ctx context.Context, id, dest string) error {
	return s.RenderMapped(ctx, id, dest, nil)
}

// RenderMapped is Render with the owner and group of every file changed
// by mapID (nil: kept): a copy for a pod in a user namespace, owned by
// the IDs the namespace maps its own to.
func (s *Store) RenderMapped(ctx context.Context, id, dest string, mapID func(int) int) error {
	layers, release, err := s.acquire(id)
	if err != nil {
		return fmt.Errorf("render %s: %w", id, err)
	}
	defer release()
	if err := s.render(ctx, layers, dest, mapID); err != nil {
		return fmt.Errorf("render %s: %w", id, err)
	}
	return nil
}

func (s *Store) render(ctx context.Context, layers []Layer, dest string, mapID func(int) int) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	if ents, err := os.ReadDir(dest); err != nil {
		return err
	} else if len(ents) > 0 {
		return fmt.Errorf("destination %s is not empty", dest)
	}
	root, err := rootfs.Open(dest, rootfs.Options{Devices: s.opts.Devices})
	if err != nil {
		return err
	}
	for _, l := range layers {
		if err := copyLayer(ctx, root, l, mapID); err != nil {
			root.Close()
			return fmt.Errorf("layer %s (%s): %w", l.Image.Name(), l.Image.ID, err)
		}
	}
	return root.Close()
}

// copyLayer writes a layer's files into root, their owners changed by
// mapID (nil: kept).
func copyLayer(ctx context.Context, root *rootfs.Root, l Layer, mapID func(int) int) error {
	keep := newFilter(l.Filters)
	links := map[[2]uint64]string{} // first copy of each multiply linked inode
	base := l.Image.RootFS
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		if rel == "." {
			rel = ""
		}
		switch keep.check(rel, d.IsDir()) {
		case skip:
			return nil
		case prune:
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		h := &tar.Header{Name: rel, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid), ModTime: fi.ModTime()}
		if mapID != nil {
			h.Uid, h.Gid = mapID(h.Uid), mapID(h.Gid)
		}
		var body io.Reader
		switch fi.Mode().Type() {
		case 0:
			h.Typeflag = tar.TypeReg
			if st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := links[key]; ok {
					h.Typeflag, h.Linkname = tar.TypeLink, first
					break
				}
				links[key] = rel
			}
			f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			h.Size, body = fi.Size(), f
		case fs.ModeDir:
			h.Typeflag = tar.TypeDir
		case fs.ModeSymlink:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case fs.ModeNamedPipe:
			h.Typeflag = tar.TypeFifo
		case fs.ModeDevice | fs.ModeCharDevice:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		case fs.ModeDevice:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeBlock, int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		default:
			return nil // sockets cannot come from an archive
		}
		return root.Create(h, body)
	})
}

type verdict int

const (
	copyIt verdict = iota
	skip           // leave this entry out
	prune          // leave this directory and everything under it out
)

// filter applies pathWhitelists: a path is kept if every list has it, or
// has something under it (then it is a parent directory to keep).
type filter struct {
	lists []pathSet
}

type pathSet struct {
	paths, parents map[string]bool
}

func newFilter(lists [][]string) filter {
	var f filter
	for _, l := range lists {
		ps := pathSet{map[string]bool{}, map[string]bool{}}
		for _, p := range l {
			p = strings.TrimPrefix(path.Clean(p), "/")
			ps.paths[p] = true
			for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
				ps.parents[d] = true
			}
		}
		f.lists = append(f.lists, ps)
	}
	return f
}

func (f filter) check(rel string, isDir bool) verdict {
	if rel == "" {
		return copyIt
	}
	for _, ps := range f.lists {
		if ps.paths[rel] {
			continue
		}
		if isDir && ps.parents[rel] {
			continue
		}
		if isDir {
			return prune
		}
		return skip
	}
	return copyIt
}

// errNeedsTree is why Lowers renders a tree instead of stacking layers.
var errNeedsTree = errors.New("layers cannot be stacked")

// maxLowerdirBytes keeps the overlay mount options within a page.
const maxLowerdirBytes = 3000

// Lowers returns the directories to stack, topmost first, as the
// lowerdir of an overlayfs mount for a pod running image id (see
// MountOverlay). Each image's own rootfs is shared read-only by every pod
// that uses it. Where stacking cannot give the spec's result (a
// pathWhitelist applies) or the list is too long for a mount, it returns
// one directory: the image rendered in the tree store (see Tree).
// The caller makes its pod known to Options.InUse before calling, so
// that GC cannot take the layers away.
func (s *Store) Lowers(ctx context.Context, id string) ([]string, error) {
	layers, err := s.Layers(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("lowers of %s: %w", id, err)
	}
	dirs, err := stack(layers)
	if errors.Is(err, errNeedsTree) {
		tree, err := s.Tree(ctx, id)
		if err != nil {
			return nil, err
		}
		return []string{tree}, nil
	}
	return dirs, err
}

// stack lists the layers' directories topmost first. An image met twice
// counts where it is met last (highest): its files win there anyway.
func stack(layers []Layer) ([]string, error) {
	seen := map[string]bool{}
	var dirs []string
	n := 0
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		if len(l.Filters) > 0 {
			return nil, errNeedsTree
		}
		if seen[l.Image.ID] {
			continue
		}
		seen[l.Image.ID] = true
		dirs = append(dirs, l.Image.RootFS)
		if n += len(l.Image.RootFS) + 1; n > maxLowerdirBytes {
			return nil, errNeedsTree
		}
	}
	return dirs, nil
}
