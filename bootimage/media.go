package bootimage

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Media is what every boot medium is made of.
type Media struct {
	// Kernel is the bzImage; Initrd the initramfs.
	Kernel, Initrd string
	// Cmdline is the kernel command line the boot menu offers.
	Cmdline string
	// Version names the build in menus and os-release ("dev" if empty).
	Version string
	// Timeout is how long a boot menu waits for a key before it boots
	// the default entry, in whole seconds: 0 boots at once, a negative
	// value waits for a key. Commands use DefaultTimeout.
	Timeout int
	// Epoch is the time every file and volume is dated (the build's
	// SOURCE_DATE_EPOCH): the same Epoch and inputs give the same bytes.
	// It cannot be before 1980, the first date FAT can hold.
	Epoch time.Time
}

// DefaultTimeout is the boot menu's timeout in seconds: long enough to
// press a key, short enough not to slow an unattended boot much.
const DefaultTimeout = 3

// versionPattern is what a version may hold: it is quoted in menus.
var versionPattern = regexp.MustCompile(`^[A-Za-z0-9._+~-]+$`)

// minEpoch is the first time a FAT directory entry can hold.
var minEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func (m Media) check() error {
	var missing []string
	if m.Kernel == "" {
		missing = append(missing, "kernel")
	}
	if m.Initrd == "" {
		missing = append(missing, "initrd")
	}
	if len(missing) > 0 {
		return fmt.Errorf("bootimage: no %s given", strings.Join(missing, " or "))
	}
	if m.Epoch.Before(minEpoch) {
		return fmt.Errorf("bootimage: epoch %s is before 1980, the first date FAT can hold: set SOURCE_DATE_EPOCH", m.Epoch.UTC().Format(time.RFC3339))
	}
	if strings.ContainsAny(m.Cmdline, "\n\r") {
		return errors.New("bootimage: the kernel command line has a line break")
	}
	if !versionPattern.MatchString(m.version()) {
		return fmt.Errorf("bootimage: version %q: use letters, digits and . _ + ~ - (it names menu entries and os-release)", m.Version)
	}
	return nil
}

func (m Media) version() string {
	if m.Version == "" {
		return "dev"
	}
	return m.Version
}
