package disks

import (
	"fmt"

	"github.com/kurmaos/kurma/config"
)

// DefaultFilesystem is what a disk is formatted with when its entry does
// not say.
const DefaultFilesystem = "ext4"

// A Plan is what to do with one device.
type Plan struct {
	// Format is set when the device is to be formatted with FSType.
	Format bool
	// FSType is the filesystem to mount: the one formatted, or the one
	// found.
	FSType string
	// Note explains the plan for the console.
	Note string
}

// RefusedError is a device that the policy does not let Kurma use: it
// holds something other than a filesystem, or nothing while the policy
// says never to format.
type RefusedError struct {
	Device string
	Found  Signature
	Policy config.FormatPolicy
	Hint   string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("disk %s holds %s and format is %s: not touched; %s", e.Device, e.Found, e.Policy, e.Hint)
}

// Decide says what to do with device dev, which holds found, under the
// disk's entry. It never plans to format a device that holds anything
// but zeros unless the entry says format: force.
func Decide(dev string, found Signature, d config.Disk) (Plan, error) {
	want := d.Filesystem
	if want == "" {
		want = DefaultFilesystem
	}
	policy := d.Format
	if policy == "" {
		policy = config.FormatNever
	}
	if policy == config.FormatForce {
		return Plan{Format: true, FSType: want, Note: fmt.Sprintf("format: force (it held %s)", found)}, nil
	}
	switch found.Kind {
	case KindFilesystem:
		p := Plan{FSType: found.Type, Note: "used as it is"}
		if found.Type != want && !(want == "ext4" && (found.Type == "ext3" || found.Type == "ext2")) {
			p.Note = fmt.Sprintf("used as it is, not formatted as the %s of the configuration", want)
		}
		return p, nil
	case KindBlank:
		if policy == config.FormatIfBlank {
			return Plan{Format: true, FSType: want, Note: "blank, format: if-blank"}, nil
		}
		return Plan{}, &RefusedError{Device: dev, Found: found, Policy: policy,
			Hint: "set format: if-blank to format it"}
	}
	return Plan{}, &RefusedError{Device: dev, Found: found, Policy: policy,
		Hint: "only a blank device is formatted; format: force erases it"}
}
