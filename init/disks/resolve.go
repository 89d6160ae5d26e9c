package disks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kurmaos/kurma/config"
	"github.com/kurmaos/kurma/config/volume"
	"github.com/kurmaos/kurma/internal/ctxtime"
)

// ErrNotFound is a disk entry that no device matches.
var ErrNotFound = errors.New("no such device")

// Resolver finds the device of a disk entry. Zero fields mean the real
// machine.
type Resolver struct {
	// Devices lists every block device, disks and partitions
	// (volume.BlockDevices).
	Devices func() ([]string, error)
	// Probe reads what a device holds (ProbeDevice).
	Probe func(dev string) (Signature, error)
	// Wait bounds the wait for a device to appear: disks are probed
	// asynchronously after their driver loads. Poll is the interval.
	Wait, Poll time.Duration
}

// ProbeDevice opens a device (or an image file) and probes it.
func ProbeDevice(dev string) (Signature, error) {
	f, err := os.Open(dev)
	if err != nil {
		return Signature{}, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return Signature{}, fmt.Errorf("size of %s: %w", dev, err)
	}
	sig, err := Probe(f, size)
	if err != nil {
		return Signature{}, fmt.Errorf("%s: %w", dev, err)
	}
	return sig, nil
}

// Describe names the entry as the configuration does: path=/dev/vdb,
// label=data, uuid=….
func Describe(d config.Disk) string {
	switch {
	case d.Path != "":
		return "path=" + d.Path
	case d.Label != "":
		return "label=" + d.Label
	}
	return "uuid=" + d.UUID
}

// Resolve returns the device of d and what it holds, waiting up to
// r.Wait for it to appear. Devices in claimed (taken by earlier entries)
// are passed over. A label or UUID that two devices share is an error:
// guessing could format the wrong one.
func (r *Resolver) Resolve(ctx context.Context, d config.Disk, claimed map[string]bool) (string, Signature, error) {
	probe := r.Probe
	if probe == nil {
		probe = ProbeDevice
	}
	poll := r.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	deadline := time.Now().Add(r.Wait)
	for {
		dev, err := r.find(d, claimed, probe)
		if err == nil {
			sig, err := probe(dev)
			if err != nil {
				return dev, Signature{}, fmt.Errorf("disk %s: read %s: %w", Describe(d), dev, err)
			}
			return dev, sig, nil
		}
		if !errors.Is(err, ErrNotFound) || !time.Now().Add(poll).Before(deadline) {
			if errors.Is(err, ErrNotFound) && r.Wait > 0 {
				err = fmt.Errorf("%w (waited %s)", err, r.Wait)
			}
			return "", Signature{}, fmt.Errorf("disk %s: %w", Describe(d), err)
		}
		if err := ctxtime.Sleep(ctx, poll); err != nil {
			return "", Signature{}, fmt.Errorf("disk %s: %w", Describe(d), err)
		}
	}
}

func (r *Resolver) find(d config.Disk, claimed map[string]bool, probe func(string) (Signature, error)) (string, error) {
	if d.Path != "" {
		matches := []string{d.Path}
		if strings.ContainsAny(d.Path, "*?[") {
			var err error
			if matches, err = filepath.Glob(d.Path); err != nil {
				return "", err
			}
			sort.Strings(matches)
		}
		for _, m := range matches {
			if _, err := os.Stat(m); err == nil && !claimed[m] {
				return m, nil
			}
		}
		return "", ErrNotFound
	}
	list := r.Devices
	if list == nil {
		list = volume.BlockDevices
	}
	devs, err := list()
	if err != nil {
		return "", fmt.Errorf("list block devices: %w", err)
	}
	var found []string
	for _, dev := range devs {
		if claimed[dev] {
			continue
		}
		sig, err := probe(dev)
		if err != nil || sig.Kind != KindFilesystem {
			continue
		}
		if matchesID(d, sig) {
			found = append(found, dev)
		}
	}
	switch len(found) {
	case 0:
		return "", ErrNotFound
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s are on %s: name the disk by path", Describe(d), strings.Join(found, " and "))
}

// matchesID compares labels as the filesystem does (FAT and ISO9660
// labels are upper case however they were written) and UUIDs without
// regard to case.
func matchesID(d config.Disk, sig Signature) bool {
	if d.Label != "" {
		if sig.Type == "vfat" || sig.Type == "iso9660" {
			return strings.EqualFold(sig.Label, d.Label)
		}
		return sig.Label == d.Label
	}
	return d.UUID != "" && strings.EqualFold(sig.UUID, d.UUID)
}
