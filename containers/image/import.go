package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/appc/spec/schema"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/atomicfile"
	"github.com/kurmaos/kurma/containers/rootfs"
)

// ImportOptions qualify one import.
type ImportOptions struct {
	// Source is recorded with the image (a URL, a path, "upload").
	Source string
	// ExpectedID, when set, must be the image's ID.
	ExpectedID string
	// Check, when set, is called with the validated manifest before the
	// image's files are written (if the manifest comes first, as it
	// should); its error stops the import.
	Check func(*schema.ImageManifest) error
}

// Import reads an ACI (tar, or tar compressed with gzip, bzip2 or xz) from
// r into the store. The manifest is validated with the appc schema and
// its os/arch labels are checked against this host; the archive is
// unpacked as hostile input (see package rootfs) into a staging directory
// under tmp/, which is renamed into images/ only when everything is
// written and synced. A failed or interrupted import leaves nothing
// behind. Importing an image the store has returns the stored one.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	img, err := s.importImage(ctx, r, opts)
	if err != nil {
		if opts.Source != "" {
			return nil, fmt.Errorf("import %s: %w", opts.Source, err)
		}
		return nil, fmt.Errorf("import: %w", err)
	}
	return img, nil
}

func (s *Store) importImage(ctx context.Context, r io.Reader, opts ImportOptions) (*Image, error) {
	staging, err := os.MkdirTemp(s.path("tmp"), "import-")
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			// Best effort: Open cleans tmp/ anyway.
			_ = os.RemoveAll(staging)
		}
	}()
	rootDir := filepath.Join(staging, "rootfs")
	if err := os.Mkdir(rootDir, 0o755); err != nil {
		return nil, err
	}
	check := func(m *schema.ImageManifest) error {
		if err := aci.HostCheck(m); err != nil {
			return err
		}
		if opts.Check != nil {
			return opts.Check(m)
		}
		return nil
	}
	res, err := aci.Unpack(ctx, r, rootDir, aci.Options{
		Limits: s.opts.Limits,
		Root:   rootfs.Options{Devices: s.opts.Devices},
		Check:  check,
	})
	if err != nil {
		return nil, err
	}
	if opts.ExpectedID != "" && res.ID != opts.ExpectedID {
		return nil, fmt.Errorf("%w: image ID is %s, want %s", ErrMismatch, res.ID, opts.ExpectedID)
	}
	in := info{ID: res.ID, Size: res.Size, ImportedAt: s.opts.Now().UTC(), Source: opts.Source, Compression: res.Compression}
	infoJSON, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(staging, "manifest"), res.ManifestJSON, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(staging, "info.json"), infoJSON, 0o600); err != nil {
		return nil, err
	}
	if err := syncTree(staging); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if have, ok := s.images[res.ID]; ok {
		return have, nil
	}
	final := s.path("images", res.ID)
	if err := renameDurably(staging, final); err != nil {
		return nil, err
	}
	committed = true
	img := &Image{ID: res.ID, Manifest: res.Manifest, Size: in.Size, ImportedAt: in.ImportedAt, Source: in.Source, Compression: in.Compression, RootFS: filepath.Join(final, "rootfs")}
	s.images[img.ID] = img
	return img, nil
}

// ImportFile imports the ACI in a local file, as it is: no signature is
// checked (Fetch checks them).
func (s *Store) ImportFile(ctx context.Context, name string, opts ImportOptions) (*Image, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	if opts.Source == "" {
		opts.Source = name
	}
	return s.Import(ctx, f, opts)
}

// ImportDir imports every *.aci file in dir, in name order, without a
// network and without signatures: it is for images shipped with the OS
// (in the initrd or on a disk), which are as trusted as the OS itself.
// One bad file does not stop the others; their errors are joined.
func (s *Store) ImportDir(ctx context.Context, dir string) ([]*Image, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("import directory: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".aci") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var imgs []*Image
	var errs []error
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		img, err := s.ImportFile(ctx, filepath.Join(dir, n), ImportOptions{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		imgs = append(imgs, img)
	}
	return imgs, errors.Join(errs...)
}
