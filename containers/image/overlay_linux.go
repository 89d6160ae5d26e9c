package image

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// OverlaySupported reports whether the running kernel has overlayfs.
func OverlaySupported() bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 && fields[len(fields)-1] == "overlay" {
			return true
		}
	}
	return false
}

// MountOverlay mounts an overlayfs at target with lowers (topmost first,
// as Lowers returns them). With upper and work (empty directories on one
// filesystem) it is writable; without them it is read-only and needs at
// least two lowers. flags are mount flags such as MS_NODEV|MS_NOSUID.
// It needs CAP_SYS_ADMIN.
func MountOverlay(target string, lowers []string, upper, work string, flags uintptr) error {
	if len(lowers) == 0 {
		return fmt.Errorf("mount overlay on %s: no lower directory", target)
	}
	for _, d := range append([]string{upper, work}, lowers...) {
		if strings.ContainsAny(d, ":,\\") {
			return fmt.Errorf("mount overlay on %s: directory %q has a character overlayfs options cannot hold", target, d)
		}
	}
	data := "lowerdir=" + strings.Join(lowers, ":")
	if upper != "" {
		data += ",upperdir=" + upper + ",workdir=" + work
	} else {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("overlay", target, "overlay", flags, data); err != nil {
		return &os.PathError{Op: "mount overlay", Path: target, Err: err}
	}
	return nil
}
