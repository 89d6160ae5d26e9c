package buildroot

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// epoch is the time of every entry of a packed image: the inputs' times
// must not reach the bytes.
var epoch = time.Unix(0, 0).UTC()

// Manifest makes the appc image manifest of the recipe's image for
// linux/amd64, with the package versions used as annotations.
func Manifest(img *Image, version string, pkgs []Package) (*schema.ImageManifest, error) {
	name, err := types.NewACIdentifier(img.Name)
	if err != nil {
		return nil, fmt.Errorf("image name %q: %w", img.Name, err)
	}
	m := schema.BlankImageManifest()
	m.Name = *name
	labels := map[types.ACIdentifier]string{"os": "linux", "arch": "amd64", "version": version}
	for k, v := range img.Labels {
		id, err := types.NewACIdentifier(k)
		if err != nil {
			return nil, fmt.Errorf("image label %q: %w", k, err)
		}
		labels[*id] = v
	}
	for _, k := range sortedLabelKeys(labels) {
		m.Labels = append(m.Labels, types.Label{Name: k, Value: labels[k]})
	}
	if len(img.Exec) > 0 {
		app := &types.App{Exec: img.Exec, User: orDefault(img.User, "0"), Group: orDefault(img.Group, "0"), WorkingDirectory: img.WorkingDir}
		for _, k := range sortedKeys(img.Environment) {
			app.Environment.Set(k, img.Environment[k])
		}
		for _, mp := range img.MountPoints {
			n, err := types.NewACName(mp.Name)
			if err != nil {
				return nil, fmt.Errorf("mount point %q: %w", mp.Name, err)
			}
			app.MountPoints = append(app.MountPoints, types.MountPoint{Name: *n, Path: mp.Path, ReadOnly: mp.ReadOnly})
		}
		for _, p := range img.Ports {
			n, err := types.NewACName(p.Name)
			if err != nil {
				return nil, fmt.Errorf("port %q: %w", p.Name, err)
			}
			app.Ports = append(app.Ports, types.Port{Name: *n, Protocol: p.Protocol, Port: uint(p.Port), Count: 1})
		}
		m.App = app
	}
	annotations := map[string]string{}
	for k, v := range img.Annotations {
		annotations[k] = v
	}
	for _, p := range pkgs {
		annotations["debian-package/"+p.Name] = p.Version
	}
	for _, k := range sortedKeys(annotations) {
		id, err := types.NewACIdentifier(k)
		if err != nil {
			return nil, fmt.Errorf("annotation %q: %w", k, err)
		}
		m.Annotations.Set(*id, annotations[k])
	}
	// Round-trip through the spec's own unmarshalling, which validates.
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var checked schema.ImageManifest
	if err := json.Unmarshal(data, &checked); err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	return m, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sortedLabelKeys(m map[types.ACIdentifier]string) []types.ACIdentifier {
	keys := make([]types.ACIdentifier, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// PackACI writes the tree as an uncompressed ACI: the manifest, then
// rootfs/ with every file of the tree, in name order, owned by root, with
// fixed times. The same tree and manifest give the same bytes.
func PackACI(tree string, m *schema.ImageManifest, w io.Writer) error {
	manifest, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	hdr := func(name string, mode int64, typ byte) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Typeflag: typ, ModTime: epoch, Format: tar.FormatPAX}
	}
	h := hdr("manifest", 0o644, tar.TypeReg)
	h.Size = int64(len(manifest))
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr("rootfs/", 0o755, tar.TypeDir)); err != nil {
		return err
	}
	var paths []string
	if err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != tree {
			paths = append(paths, p)
		}
		return err
	}); err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(tree, p)
		name := "rootfs/" + filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		mode := int64(fi.Mode().Perm())
		switch {
		case fi.IsDir():
			err = tw.WriteHeader(hdr(name+"/", mode, tar.TypeDir))
		case fi.Mode()&fs.ModeSymlink != 0:
			h := hdr(name, 0o777, tar.TypeSymlink)
			if h.Linkname, err = os.Readlink(p); err == nil {
				err = tw.WriteHeader(h)
			}
		case fi.Mode().IsRegular():
			err = writeFile(tw, hdr(name, mode, tar.TypeReg), p, fi.Size())
		default:
			err = fmt.Errorf("%s: %s is not a file, directory or symlink", tree, rel)
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, h *tar.Header, p string, size int64) error {
	h.Size = size
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
