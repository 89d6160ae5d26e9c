package image

import (
	"context"
	"errors"
	"fmt"

	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/fetch"
)

// ErrNoFetcher is returned by Fetch when the store has no Fetcher.
var ErrNoFetcher = errors.New("remote retrieval is not configured")

// Fetch retrieves ref (a path, an http(s) URL, or an image name with
// labels; see fetch.Fetcher.Fetch), checks it as the Fetcher is
// configured to (whitelist, proxy, signature), imports it, and then does
// the same for each dependency the store does not have: by name and
// labels, with the dependency's imageID as the ID the import must find.
// ref itself is always retrieved; a dependency already stored is used as
// it is.
func (s *Store) Fetch(ctx context.Context, ref string, opts fetch.Options) (*Image, error) {
	if s.opts.Fetcher == nil {
		return nil, fmt.Errorf("fetch %s: %w", ref, ErrNoFetcher)
	}
	d, err := s.opts.Fetcher.Fetch(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	img, err := s.Import(ctx, d.File, ImportOptions{Source: d.Source})
	if err != nil {
		return nil, err
	}
	if err := s.fetchDependencies(ctx, img, opts, []string{img.ID}); err != nil {
		return img, fmt.Errorf("fetch %s: %w", ref, err)
	}
	return img, nil
}

func (s *Store) fetchDependencies(ctx context.Context, img *Image, opts fetch.Options, path []string) error {
	if len(path) > maxDepth {
		return fmt.Errorf("dependencies nest deeper than %d", maxDepth)
	}
	for _, dep := range img.Manifest.Dependencies {
		d, err := s.fetchDependency(ctx, dep, opts)
		if err != nil {
			return fmt.Errorf("dependency %s of %s: %w", dep.ImageName, img.Name(), err)
		}
		for _, id := range path {
			if id == d.ID {
				return fmt.Errorf("dependency cycle through %s (%s)", d.Name(), d.ID)
			}
		}
		if err := s.fetchDependencies(ctx, d, opts, append(path, d.ID)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) fetchDependency(ctx context.Context, dep types.Dependency, opts fetch.Options) (*Image, error) {
	s.mu.RLock()
	have, err := s.resolve(dep)
	s.mu.RUnlock()
	if err == nil {
		return have, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if dep.Size > 0 {
		opts.MaxBytes = int64(dep.Size)
	}
	d, err := s.opts.Fetcher.FetchName(ctx, dep.ImageName.String(), dep.Labels, opts)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var id string
	if dep.ImageID != nil && !dep.ImageID.Empty() {
		id = dep.ImageID.String()
	}
	return s.Import(ctx, d.File, ImportOptions{Source: d.Source, ExpectedID: id})
}
