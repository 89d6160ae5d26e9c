package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"
)

// Remove deletes image id (or a unique ID prefix) and the trees rendered
// from it. An image that a pod uses, directly or as a dependency, or that
// is being rendered, is refused with ErrInUse.
func (s *Store) Remove(ctx context.Context, id string) error {
	used, err := s.usedIDs(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	s.mu.Lock()
	img, err := s.get(id)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("remove: %w", err)
	}
	if s.closure(used)[img.ID] || s.busy[img.ID] > 0 {
		s.mu.Unlock()
		return fmt.Errorf("remove %s (%s): %w", img.ID, img.Name(), ErrInUse)
	}
	gone, _, err := s.unlink(map[string]bool{img.ID: true}, nil)
	s.mu.Unlock()
	return errors.Join(err, removeAll(gone))
}

// GCOptions qualify a garbage collection.
type GCOptions struct {
	// GracePeriod keeps images imported less than this long ago (and
	// their dependencies), so that an image fetched for a pod about to
	// start is not collected first.
	GracePeriod time.Duration
}

// GCResult says what a collection removed.
type GCResult struct {
	Images []string // IDs of the removed images
	Trees  int      // rendered trees removed
	Freed  int64    // sum of the removed images' sizes
}

// GC removes the images no pod uses (see Options.InUse), keeping the
// dependencies of those in use and of those within the grace period, and
// the rendered trees of images no pod uses.
func (s *Store) GC(ctx context.Context, opts GCOptions) (*GCResult, error) {
	used, err := s.usedIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	s.mu.Lock()
	cutoff := s.opts.Now().Add(-opts.GracePeriod)
	roots := slices.Clone(used)
	for id, img := range s.images {
		if img.ImportedAt.After(cutoff) {
			roots = append(roots, id)
		}
	}
	keep := s.closure(roots)
	drop := map[string]bool{}
	res := &GCResult{}
	for id, img := range s.images {
		if !keep[id] && s.busy[id] == 0 {
			drop[id] = true
			res.Images = append(res.Images, id)
			res.Freed += img.Size
		}
	}
	inUse := s.closure(used)
	gone, trees, err := s.unlink(drop, func(top string) bool { return !inUse[top] })
	res.Trees = trees
	s.mu.Unlock()
	sort.Strings(res.Images)
	return res, errors.Join(err, removeAll(gone))
}

func (s *Store) usedIDs(ctx context.Context) ([]string, error) {
	if s.opts.InUse == nil {
		return nil, nil
	}
	ids, err := s.opts.InUse(ctx)
	if err != nil {
		return nil, fmt.Errorf("images in use: %w", err)
	}
	return ids, nil
}

// closure is the set of the given images and of every layer they are
// rendered from. Called with s.mu held.
func (s *Store) closure(ids []string) map[string]bool {
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
		layers, err := s.layers(id)
		if err != nil {
			continue // not stored, or a dependency is missing: keep what resolves
		}
		for _, l := range layers {
			set[l.Image.ID] = true
		}
	}
	return set
}

// unlink takes images and trees out of the store: it drops the images in
// drop, and the trees made from any of them or whose top image dropTree
// says to drop (dropTree may be nil). Each is renamed into tmp/ under
// s.mu, so that the store never shows half an image; the caller removes
// the returned directories after unlocking. It also says how many trees
// it took. Called with s.mu held.
func (s *Store) unlink(drop map[string]bool, dropTree func(top string) bool) (gone []string, trees int, err error) {
	var errs []error
	for id := range drop {
		dir, err := s.moveAside(s.path("images", id))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		delete(s.images, id)
		gone = append(gone, dir)
	}
	ents, err := os.ReadDir(s.path("trees"))
	if err != nil {
		return gone, 0, errors.Join(append(errs, err)...)
	}
	for _, e := range ents {
		ids, err := s.treeLayers(e.Name())
		if err != nil || len(ids) == 0 {
			continue // being renamed in, or not a tree
		}
		stale := slices.ContainsFunc(ids, func(id string) bool { return drop[id] || s.images[id] == nil })
		if !stale && (dropTree == nil || !dropTree(ids[len(ids)-1])) {
			continue
		}
		mu := s.trees[e.Name()]
		if mu != nil && !mu.TryLock() {
			continue // being rendered or read right now
		}
		dir, err := s.moveAside(s.path("trees", e.Name()))
		if mu != nil {
			mu.Unlock()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, dir)
		trees++
	}
	return gone, trees, errors.Join(errs...)
}

// moveAside renames dir into tmp/ durably and returns its new path.
func (s *Store) moveAside(dir string) (string, error) {
	tmp, err := os.MkdirTemp(s.path("tmp"), "remove-")
	if err != nil {
		return "", err
	}
	if err := renameDurably(dir, filepath.Join(tmp, "x")); err != nil {
		return "", fmt.Errorf("remove %s: %w", dir, err)
	}
	return tmp, nil
}

func removeAll(dirs []string) error {
	var errs []error
	for _, d := range dirs {
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}
