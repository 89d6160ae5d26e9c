package bootimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Files from Debian's packages that the media are built from.
var (
	isolinuxBin  = "/usr/lib/ISOLINUX/isolinux.bin"              // isolinux
	isohybridMBR = "/usr/lib/ISOLINUX/isohdpfx.bin"              // isolinux
	gptMBR       = "/usr/lib/syslinux/mbr/gptmbr.bin"            // syslinux
	syslinuxMods = "/usr/lib/syslinux/modules/bios"              // syslinux-common
	grubEFIMods  = "/usr/lib/grub/x86_64-efi"                    // grub-efi-amd64-bin
	efiStub      = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub" // systemd-boot-efi
)

// syslinuxModules are the syslinux modules a menu needs, besides
// isolinux.bin or ldlinux.sys: ldlinux.c32 is the core's second half,
// menu.c32 the menu, and the libraries menu.c32 links.
var syslinuxModules = []string{"ldlinux.c32", "menu.c32", "libutil.c32", "libcom32.c32"}

// ErrMissingTool is wrapped by the errors of a build whose tools or
// files are not installed.
var ErrMissingTool = errors.New("not installed (scripts/setup installs it)")

// Tools returns the external programs and data files the media need,
// with the Debian package of each, so tests can skip when they are
// missing.
func Tools() map[string]string {
	return map[string]string{
		"xorriso":                     "xorriso",
		"mformat":                     "mtools",
		"mcopy":                       "mtools",
		"mmd":                         "mtools",
		"syslinux":                    "syslinux",
		"grub-mkimage":                "grub-efi-amd64-bin",
		"qemu-img":                    "qemu-utils",
		isolinuxBin:                   "isolinux",
		isohybridMBR:                  "isolinux",
		gptMBR:                        "syslinux",
		syslinuxMods:                  "syslinux-common",
		grubEFIMods:                   "grub-efi-amd64-bin",
		efiStub:                       "systemd-boot-efi",
		"/usr/lib/ipxe/undionly.kpxe": "ipxe",
		"/usr/lib/ipxe/snponly.efi":   "ipxe",
	}
}

// MissingTools lists the tools and files of Tools that are not here.
func MissingTools() []string {
	var missing []string
	for t, pkg := range Tools() {
		if strings.HasPrefix(t, "/") {
			if _, err := os.Stat(t); err != nil {
				missing = append(missing, t+" ("+pkg+")")
			}
		} else if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t+" ("+pkg+")")
		}
	}
	return missing
}

// run runs a tool with the build's epoch as SOURCE_DATE_EPOCH, in UTC,
// and returns an error holding what it printed if it fails.
func run(ctx context.Context, epoch time.Time, name string, args ...string) error {
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("%s: %w", name, ErrMissingTool)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(),
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10),
		"TZ=UTC",
		"MTOOLS_SKIP_CHECK=1", // images without a partition table of their own
		"LC_ALL=C",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// needFile returns an error naming the package of a missing data file.
func needFile(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s: %w (package %s)", path, ErrMissingTool, Tools()[path])
	}
	return nil
}
