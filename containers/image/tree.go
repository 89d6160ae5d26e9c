package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kurmaos/kurma/containers/atomicfile"
)

// Tree returns a directory holding the root filesystem of image id with
// its dependencies rendered (see Render), from the tree store: rendered
// once, then shared read-only. A tree is keyed by the exact layers it was
// made from, so importing a newer dependency makes a new tree.
func (s *Store) Tree(ctx context.Context, id string) (string, error) {
	layers, release, err := s.acquire(id)
	if err != nil {
		return "", fmt.Errorf("tree of %s: %w", id, err)
	}
	defer release()
	key, err := treeKey(layers)
	if err != nil {
		return "", err
	}
	mu := s.treeLock(key)
	mu.Lock()
	defer mu.Unlock()
	final := s.path("trees", key)
	if _, err := os.Stat(filepath.Join(final, "layers")); err == nil {
		return filepath.Join(final, "rootfs"), nil
	}
	if err := s.renderTree(ctx, layers, final); err != nil {
		return "", fmt.Errorf("tree of %s: %w", id, err)
	}
	return filepath.Join(final, "rootfs"), nil
}

func (s *Store) renderTree(ctx context.Context, layers []Layer, final string) error {
	tmp, err := os.MkdirTemp(s.path("tmp"), "tree-")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp) // best effort: Open cleans tmp/ anyway
		}
	}()
	if err := s.render(ctx, layers, filepath.Join(tmp, "rootfs"), nil); err != nil {
		return err
	}
	var ids []string
	for _, l := range layers {
		ids = append(ids, l.Image.ID)
	}
	if err := atomicfile.Write(filepath.Join(tmp, "layers"), []byte(strings.Join(ids, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	if err := syncTree(tmp); err != nil {
		return err
	}
	if err := renameDurably(tmp, final); err != nil {
		return err
	}
	done = true
	return nil
}

func (s *Store) treeLock(key string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu, ok := s.trees[key]
	if !ok {
		mu = &sync.Mutex{}
		s.trees[key] = mu
	}
	return mu
}

func treeKey(layers []Layer) (string, error) {
	h := sha256.New()
	for _, l := range layers {
		f, err := json.Marshal(l.Filters)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", l.Image.ID, f)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// treeLayers reads the layers a stored tree was made from.
func (s *Store) treeLayers(key string) ([]string, error) {
	data, err := os.ReadFile(s.path("trees", key, "layers"))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(data)), nil
}
