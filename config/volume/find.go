package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNotFound means no device holds a volume with the label sought.
var ErrNotFound = errors.New("no volume with this label")

// Finder finds volumes by label among block devices.
type Finder struct {
	// Devices lists the paths to probe. Nil means every block device
	// of a non-zero size in /sys/class/block, as /dev/NAME.
	Devices func() ([]string, error)
}

// Find returns the path of the first device, in name order, whose
// filesystem label is label; labels are compared without regard to case,
// as cloud-init does ("cidata" and "CIDATA"). Devices that cannot be read
// are passed over.
func (f Finder) Find(label string) (string, error) {
	list := f.Devices
	if list == nil {
		list = BlockDevices
	}
	devs, err := list()
	if err != nil {
		return "", fmt.Errorf("list block devices: %w", err)
	}
	for _, d := range devs {
		info, err := probeFile(d)
		if err == nil && strings.EqualFold(info.Label, label) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrNotFound, label)
}

func probeFile(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	return Probe(f)
}

// BlockDevices lists /dev/NAME for every block device, disks and
// partitions, that /sys/class/block shows with a non-zero size.
func BlockDevices() ([]string, error) {
	return blockDevices("/sys/class/block", "/dev")
}

func blockDevices(sys, dev string) ([]string, error) {
	ents, err := os.ReadDir(sys)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sys, e.Name(), "size"))
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil || n == 0 {
			continue
		}
		out = append(out, filepath.Join(dev, e.Name()))
	}
	sort.Strings(out)
	return out, nil
}

// OpenPath opens a volume given as a path: a directory is read as it is,
// an image file or a device is read as an ISO9660 or FAT filesystem. The
// returned close function releases the file.
func OpenPath(path string) (fs.FS, func() error, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return os.DirFS(path), func() error { return nil }, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fsys, _, err := Open(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return fsys, f.Close, nil
}
