package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/config"
)

// A container's pod has one app, named after the container, from its
// image; the configuration changes it:
//
//   - args replace the image's exec (program and arguments);
//   - env is added to the image's environment;
//   - each volume is a pod volume mounted at its path (a host volume's
//     source directory is made when it is missing);
//   - each file is written under the bootstrap's directory on the host
//     (/run/kurma/bootstrap/NAME/files/PATH, with its mode) and bound,
//     read-only, at its path: a volume of one file, written afresh at
//     each start;
//   - isolators are the pod's;
//   - a mount point of the image that no volume fills gets an empty
//     volume of its name.

// hostFile is a file of the configuration, written on the host.
type hostFile struct {
	path   string // in the container
	source string // on the host
}

// writeFiles writes the container's files under dir, afresh, and returns
// where each is.
func writeFiles(dir string, files []config.File) ([]hostFile, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	var out []hostFile
	for _, f := range files {
		mode := uint64(0o644)
		if f.Mode != "" {
			var err error
			if mode, err = strconv.ParseUint(f.Mode, 8, 32); err != nil || mode > 0o7777 {
				return nil, fmt.Errorf("file %s: mode %q is not an octal mode", f.Path, f.Mode)
			}
		}
		if !path.IsAbs(f.Path) || path.Clean(f.Path) == "/" {
			return nil, fmt.Errorf("file %q: the path must be absolute", f.Path)
		}
		src := filepath.Join(dir, filepath.FromSlash(path.Clean(f.Path)))
		if err := os.MkdirAll(filepath.Dir(src), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(src, []byte(f.Content), 0o600); err != nil {
			return nil, err
		}
		if err := os.Chmod(src, os.FileMode(mode&0o777)); err != nil {
			return nil, err
		}
		out = append(out, hostFile{path: path.Clean(f.Path), source: src})
	}
	return out, nil
}

// podManifest makes the pod manifest of a container from its image.
func podManifest(c *config.Container, img *Image, files []hostFile) (*schema.PodManifest, error) {
	appName, err := types.NewACName(c.Name)
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", c.Name, err)
	}
	app := &types.App{User: "0", Group: "0"}
	if img.App != nil {
		copied := *img.App
		app = &copied
	}
	if len(c.Args) > 0 {
		app.Exec = append(types.Exec{}, c.Args...)
	}
	if len(app.Exec) == 0 {
		return nil, fmt.Errorf("image %s has no app: give the command to run in args", img.Name)
	}
	env := append(types.Environment{}, app.Environment...)
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		env.Set(k, c.Env[k])
	}
	app.Environment = env
	id, err := types.NewHash(img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}
	pm := schema.BlankPodManifest()
	ra := schema.RuntimeApp{Name: *appName, Image: schema.RuntimeImage{ID: *id}, App: app}
	filled := map[string]bool{} // volume names and mount paths
	for _, v := range c.Volumes {
		name, err := types.NewACName(v.Name)
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		vol := types.Volume{Name: *name, Kind: v.Kind}
		if v.ReadOnly {
			ro := true
			vol.ReadOnly = &ro
		}
		switch v.Kind {
		case "host":
			vol.Source = v.Source
			// A missing source is made as a directory; an existing one,
			// a file too (the console's /bin/kurma), is used as it is.
			if _, err := os.Lstat(v.Source); errors.Is(err, fs.ErrNotExist) {
				if err := os.MkdirAll(v.Source, 0o755); err != nil {
					return nil, fmt.Errorf("volume %s: %w", v.Name, err)
				}
			}
		default:
			vol.Kind = "empty"
			mode, uid, gid := "0755", 0, 0
			vol.Mode, vol.UID, vol.GID = &mode, &uid, &gid
		}
		pm.Volumes = append(pm.Volumes, vol)
		ra.Mounts = append(ra.Mounts, schema.Mount{Volume: *name, Path: v.Path})
		filled[v.Name], filled[path.Clean(v.Path)] = true, true
	}
	for i, f := range files {
		name := types.ACName(fmt.Sprintf("bootstrap-file-%d", i))
		ro := true
		pm.Volumes = append(pm.Volumes, types.Volume{Name: name, Kind: "host", Source: f.source, ReadOnly: &ro})
		ra.Mounts = append(ra.Mounts, schema.Mount{Volume: name, Path: f.path})
		filled[f.path] = true
	}
	for _, mp := range app.MountPoints {
		if filled[mp.Name.String()] || filled[path.Clean(mp.Path)] {
			continue
		}
		mode, uid, gid := "0755", 0, 0
		pm.Volumes = append(pm.Volumes, types.Volume{Name: mp.Name, Kind: "empty", Mode: &mode, UID: &uid, GID: &gid})
		ra.Mounts = append(ra.Mounts, schema.Mount{Volume: mp.Name, Path: mp.Path})
	}
	pm.Apps = schema.AppList{ra}
	for _, name := range slices.Sorted(maps.Keys(c.Isolators)) {
		data, err := json.Marshal(map[string]any{"name": name, "value": c.Isolators[name]})
		if err != nil {
			return nil, fmt.Errorf("isolator %s: %w", name, err)
		}
		var iso types.Isolator
		if err := json.Unmarshal(data, &iso); err != nil {
			return nil, fmt.Errorf("isolator %s: %w", name, err)
		}
		pm.Isolators = append(pm.Isolators, iso)
	}
	return pm, nil
}
