package boot

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// A mount is one filesystem the boot mounts.
type mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	Mode                   os.FileMode // of the target directory, if created
}

// earlyMounts are the API filesystems every later phase needs, in order.
var earlyMounts = []mount{
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0755", 0o755},
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", 0o555},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", 0o555},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", 0o755},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", 0o1777},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5", 0o755},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", 0o1777},
	{"mqueue", "/dev/mqueue", "mqueue", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", 0o755},
}

// movedMounts are the top-level mounts switch_root carries into the new
// root (their submounts move with them).
var movedMounts = []string{"/dev", "/proc", "/sys", "/run", "/tmp"}

// earlyLinks are the conventional /dev symlinks devtmpfs does not make.
var earlyLinks = [][2]string{
	{"/proc/self/fd", "/dev/fd"},
	{"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"},
	{"/proc/self/fd/2", "/dev/stderr"},
	{"pts/ptmx", "/dev/ptmx"},
}

func (m mount) mount() error {
	if err := os.MkdirAll(m.Target, m.Mode); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err)
	}
	err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data)
	if errors.Is(err, unix.EBUSY) && mounted(m.Target) {
		return nil // the kernel mounted it already (devtmpfs.mount=1)
	}
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err)
	}
	return nil
}

// mounted reports whether path is a mount point: its device differs from
// its parent's.
func mounted(path string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(path, &st) != nil || unix.Lstat(path+"/..", &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino
}

// mountEarly mounts the API filesystems and makes the /dev links.
func mountEarly() error {
	for _, m := range earlyMounts {
		if err := m.mount(); err != nil {
			return err
		}
	}
	for _, l := range earlyLinks {
		if err := os.Symlink(l[0], l[1]); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

// cgroupControllers mounts the cgroup v2 hierarchy and enables every
// controller the kernel offers for the hierarchy below the root.
func mountCgroups() ([]string, error) {
	m := mount{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME, "nsdelegate,memory_recursiveprot", 0o755}
	if err := m.mount(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		return nil, err
	}
	var enabled []string
	for _, c := range strings.Fields(string(data)) {
		if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+"+c), 0); err != nil {
			return enabled, fmt.Errorf("cgroup: enable controller %s: %w", c, err)
		}
		enabled = append(enabled, c)
	}
	return enabled, nil
}
