package image

import (
	"fmt"
	"sort"
	"strings"

	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/aci"
)

// Get returns the image with this ID, or with this unique ID prefix (at
// least "sha512-" and 8 hex digits).
func (s *Store) Get(id string) (*Image, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.get(id)
}

func (s *Store) get(id string) (*Image, error) {
	if img, ok := s.images[id]; ok {
		return img, nil
	}
	if len(id) < len("sha512-")+8 || !strings.HasPrefix(id, "sha512-") {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	var found *Image
	for k, img := range s.images {
		if strings.HasPrefix(k, id) {
			if found != nil {
				return nil, fmt.Errorf("%w: %s", ErrAmbiguous, id)
			}
			found = img
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return found, nil
}

// Find returns the image with this name whose labels match (see
// aci.LabelsMatch: an image without os or arch labels runs anywhere).
// Without a version label, or with version "latest", the most recently
// imported match is the answer; so it is when several images match.
func (s *Store) Find(name string, labels types.Labels) (*Image, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.find(name, labels)
}

func (s *Store) find(name string, labels types.Labels) (*Image, error) {
	var best *Image
	for _, img := range s.images {
		if img.Name() != name || !aci.LabelsMatch(img.Manifest, labels) {
			continue
		}
		if best == nil || img.ImportedAt.After(best.ImportedAt) || img.ImportedAt.Equal(best.ImportedAt) && img.ID > best.ID {
			best = img
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, describe(name, labels))
	}
	return best, nil
}

func describe(name string, labels types.Labels) string {
	var b strings.Builder
	b.WriteString(name)
	for _, l := range labels {
		fmt.Fprintf(&b, ",%s=%s", l.Name, l.Value)
	}
	return b.String()
}

// List returns every image, by name and then import time.
func (s *Store) List() []*Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	imgs := make([]*Image, 0, len(s.images))
	for _, img := range s.images {
		imgs = append(imgs, img)
	}
	sort.Slice(imgs, func(i, j int) bool {
		a, b := imgs[i], imgs[j]
		if a.Name() != b.Name() {
			return a.Name() < b.Name()
		}
		if !a.ImportedAt.Equal(b.ImportedAt) {
			return a.ImportedAt.Before(b.ImportedAt)
		}
		return a.ID < b.ID
	})
	return imgs
}
