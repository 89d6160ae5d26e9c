package datasource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/kurmaos/kurma/config/volume"
)

// ErrAbsent means the datasource is not on this machine: no volume has
// its label. It is not a failure.
var ErrAbsent = errors.New("not present")

// Volume reads a file from a volume found by its filesystem label, or
// from a given directory, image file or device.
type Volume struct {
	// Label is the filesystem label sought, when Path is empty.
	Label string
	// Path is a directory, image file or device to read instead.
	Path string
	// File is the file's path in the volume.
	File string
	// Timeout is how long to wait for the volume to appear; 0 looks once.
	Timeout time.Duration
	Finder  volume.Finder
	Clock   Clock
}

// NoCloud is a cloud-init NoCloud volume: label cidata, file user-data.
func NoCloud() *Volume { return &Volume{Label: "cidata", File: "user-data"} }

// ConfigDrive is an OpenStack config drive: label config-2, file
// openstack/latest/user_data.
func ConfigDrive() *Volume { return &Volume{Label: "config-2", File: "openstack/latest/user_data"} }

// Fetch finds the volume and reads the file. A volume that is not there
// gives an error matching ErrAbsent.
func (v *Volume) Fetch(ctx context.Context) (Document, error) {
	where := v.Path
	if where == "" {
		clock := v.Clock
		if clock.Now == nil {
			clock = RealClock
		}
		deadline := clock.Now().Add(v.Timeout)
		for {
			dev, err := v.Finder.Find(v.Label)
			if err == nil {
				where = dev
				break
			}
			if !errors.Is(err, volume.ErrNotFound) {
				return Document{Source: "LABEL=" + v.Label}, err
			}
			if !clock.Now().Before(deadline) {
				return Document{Source: "LABEL=" + v.Label}, fmt.Errorf("no volume labelled %q: %w", v.Label, ErrAbsent)
			}
			if err := clock.Sleep(ctx, 100*time.Millisecond); err != nil {
				return Document{Source: "LABEL=" + v.Label}, err
			}
		}
	}
	src := where + ":" + v.File
	fsys, closeFn, err := volume.OpenPath(where)
	if err != nil {
		return Document{Source: src}, err
	}
	defer closeFn()
	f, err := fsys.Open(path.Clean(v.File))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Document{Source: src}, fmt.Errorf("the volume has no %s", v.File)
		}
		return Document{Source: src}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return Document{Source: src}, err
	}
	if len(data) > MaxSize {
		return Document{Source: src}, fmt.Errorf("%s is larger than %d bytes", v.File, MaxSize)
	}
	return Document{Source: src, Data: data}, nil
}
