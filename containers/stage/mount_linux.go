package stage

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fdPath names an open descriptor as a path, for mount(2).
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// openInRoot opens name (absolute or relative, in the app's terms)
// inside the root rootfd: symlinks are resolved as if rootfd were "/"
// and ".." never leaves it (RESOLVE_IN_ROOT); magic links such as
// /proc/self/fd/N or /proc/1/root are refused, since they lead outside.
func openInRoot(rootfd int, name string, flags uint64) (int, error) {
	name = strings.TrimLeft(path.Clean("/"+name), "/")
	if name == "" {
		name = "."
	}
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for range 16 {
		fd, err := unix.Openat2(rootfd, name, &how)
		if err != unix.EAGAIN && err != unix.EINTR {
			if err != nil {
				return -1, &os.PathError{Op: "open in root", Path: "/" + name, Err: err}
			}
			return fd, nil
		}
	}
	return -1, &os.PathError{Op: "open in root", Path: "/" + name, Err: unix.EAGAIN}
}

// mkTarget returns an O_PATH descriptor of the mount target name inside
// the root, creating it and its missing parents (directories 0755, root),
// resolved inside the root at every step. With file, the target is an
// empty regular file; otherwise a directory, and a file found in its
// place is replaced by one (ace.md, Volume Setup).
func mkTarget(rootfd int, name string, file bool) (int, error) {
	clean := strings.TrimLeft(path.Clean("/"+name), "/")
	if clean == "" {
		return openInRoot(rootfd, ".", unix.O_PATH|unix.O_DIRECTORY)
	}
	parent, base := path.Split(clean)
	pfd, err := openInRoot(rootfd, parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return -1, err
		}
		if pfd, err = mkTarget(rootfd, parent, false); err != nil {
			return -1, err
		}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	exists := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	isDir := exists && st.Mode&unix.S_IFMT == unix.S_IFDIR
	isLink := exists && st.Mode&unix.S_IFMT == unix.S_IFLNK
	switch {
	case isLink:
		// Resolved inside the root below.
	case !file && exists && !isDir:
		if err := unix.Unlinkat(pfd, base, 0); err != nil {
			return -1, &os.PathError{Op: "replace file by directory", Path: "/" + clean, Err: err}
		}
		fallthrough
	case !file && !exists:
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
			return -1, &os.PathError{Op: "create mount point", Path: "/" + clean, Err: err}
		}
	case file && !exists:
		fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil && err != unix.EEXIST {
			return -1, &os.PathError{Op: "create mount point", Path: "/" + clean, Err: err}
		}
		if err == nil {
			unix.Close(fd)
		}
	}
	flags := uint64(unix.O_PATH)
	if !file {
		flags |= unix.O_DIRECTORY
	}
	return openInRoot(rootfd, clean, flags)
}

// bindInRoot bind mounts the host path src (opened without following any
// symlink) onto target inside the root, then makes it read-only if asked.
func bindInRoot(rootfd int, src, target string, recursive, readOnly bool) error {
	sfd, err := openNoSymlinks(src)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: src, Err: err}
	}
	tfd, err := mkTarget(rootfd, target, st.Mode&unix.S_IFMT != unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	flags := uintptr(unix.MS_BIND)
	if recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(fdPath(sfd), fdPath(tfd), "", flags, ""); err != nil {
		return &os.PathError{Op: "bind mount " + src + " on", Path: target, Err: err}
	}
	if readOnly {
		return setReadOnly(rootfd, target, recursive)
	}
	return nil
}

// setReadOnly makes the mount at target (inside the root) read-only, and
// with recursive every mount under it.
func setReadOnly(rootfd int, target string, recursive bool) error {
	fd, err := openInRoot(rootfd, target, unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	flags := unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	if err := unix.MountSetattr(fd, "", uint(flags), &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return &os.PathError{Op: "make read-only", Path: target, Err: err}
	}
	return nil
}

// openNoSymlinks opens a host path with O_PATH, refusing a symlink in any
// component (ace.md: a symlinked volume source is an error).
func openNoSymlinks(p string) (int, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(unix.AT_FDCWD, p, &how)
	if err != nil {
		if err == unix.ELOOP {
			return -1, fmt.Errorf("volume source %s: a component is a symlink (refused)", p)
		}
		return -1, &os.PathError{Op: "open volume source", Path: p, Err: err}
	}
	return fd, nil
}

// mountIn mounts a filesystem on target (a top-level directory) inside
// the root. An image's symlink there is refused: /proc or /dev pointing
// elsewhere would move what the runtime mounts (THREATS.md 14).
func mountIn(rootfd int, fstype, target string, flags uintptr, data string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(rootfd, strings.TrimPrefix(target, "/"), &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s in the image is not a directory (refused)", target)
	}
	tfd, err := mkTarget(rootfd, target, false)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	if err := unix.Mount(fstype, fdPath(tfd), fstype, flags, data); err != nil {
		return &os.PathError{Op: "mount " + fstype + " on", Path: target, Err: err}
	}
	return nil
}

// device nodes of /dev (OS-SPEC.md), mode 0666.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// setupDev mounts the app's /dev: a tmpfs with the spec's device nodes,
// /dev/console (/dev/null, since pods have no console), the pod's devpts
// on /dev/pts with /dev/ptmx a link into it, and the pod's /dev/shm.
func setupDev(rootfd int, run string) error {
	const flags = unix.MS_NOSUID | unix.MS_STRICTATIME
	if err := mountIn(rootfd, "tmpfs", "/dev", flags, "mode=755,size=65536k"); err != nil {
		return err
	}
	dfd, err := openInRoot(rootfd, "/dev", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	for _, d := range devices {
		if err := unix.Mknodat(dfd, d.name, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return &os.PathError{Op: "mknod", Path: "/dev/" + d.name, Err: err}
		}
	}
	for _, l := range [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}} {
		if err := unix.Symlinkat(l[0], dfd, l[1]); err != nil {
			return &os.PathError{Op: "symlink", Path: "/dev/" + l[1], Err: err}
		}
	}
	if err := checkDevNull(rootfd); err != nil {
		return err
	}
	null, err := openInRoot(rootfd, "/dev/null", unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	console, err := mkTarget(rootfd, "/dev/console", true)
	if err != nil {
		return err
	}
	defer unix.Close(console)
	if err := unix.Mount(fdPath(null), fdPath(console), "", unix.MS_BIND, ""); err != nil {
		return &os.PathError{Op: "bind /dev/null on", Path: "/dev/console", Err: err}
	}
	if err := bindInRoot(rootfd, run+"/devpts", "/dev/pts", false, false); err != nil {
		return err
	}
	return bindInRoot(rootfd, run+"/shm", "/dev/shm", false, false)
}

// checkDevNull makes sure /dev/null inside the root is the null device
// before it is used to mask anything (THREATS.md 18).
func checkDevNull(rootfd int) error {
	fd, err := openInRoot(rootfd, "/dev/null", unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		return errors.New("/dev/null in the app's root is not the null device")
	}
	return nil
}

// Paths of /proc and /sys an app must not read or write (THREATS.md 19
// and 20): masked ones are covered by /dev/null (files) or an empty
// read-only tmpfs (directories); read-only ones are bound read-only.
var (
	maskedPaths = []string{
		"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
		"/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware",
	}
	readOnlyPaths = []string{
		"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs",
	}
)

// systemTrees mounts, under run/system, the /dev, /proc and /sys of the
// pod's apps (see setupDev and setupProcSys), and the pod's devpts and
// shm they use, once per pod (and ahead of it, in a spare init); each
// app gets them with one recursive bind each (bindSystemTree).
func systemTrees(run string) error {
	for _, d := range []string{"devpts", "shm", "system"} {
		if err := os.Mkdir(run+"/"+d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("devpts", run+"/devpts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return fmt.Errorf("mount devpts: %w", err)
	}
	if err := unix.Mount("shm", run+"/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount shm: %w", err)
	}
	fd, err := unix.Open(run+"/system", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := setupDev(fd, run); err != nil {
		return err
	}
	return setupProcSys(fd)
}

// bindSystemTree binds one of the pod's system trees (src, with every
// mount under it, read-only ones staying so) on target, a top-level
// directory of the app's root. An image's symlink there is refused, as
// in mountIn.
func bindSystemTree(rootfd int, src, target string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(rootfd, strings.TrimPrefix(target, "/"), &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s in the image is not a directory (refused)", target)
	}
	sfd, err := unix.Open(src, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: src, Err: err}
	}
	defer unix.Close(sfd)
	tfd, err := mkTarget(rootfd, target, false)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	if err := unix.Mount(fdPath(sfd), fdPath(tfd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &os.PathError{Op: "bind " + src + " on", Path: target, Err: err}
	}
	return nil
}

// setupProcSys mounts /proc (the pod's PID namespace) and /sys read-only,
// then masks and protects their sensitive paths.
func setupProcSys(rootfd int) error {
	if err := mountIn(rootfd, "proc", "/proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	// Everything written under /proc from here on must be the procfs just
	// mounted, not something the image put there (THREATS.md 15).
	pfd, err := openInRoot(rootfd, "/proc", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	var sfs unix.Statfs_t
	err = unix.Fstatfs(pfd, &sfs)
	unix.Close(pfd)
	if err != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		return errors.New("/proc in the app's root is not procfs after mounting it")
	}
	if err := mountIn(rootfd, "sysfs", "/sys", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	null, err := openInRoot(rootfd, "/dev/null", unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	for _, p := range maskedPaths {
		fd, err := openInRoot(rootfd, p, unix.O_PATH|unix.O_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=555")
		} else {
			err = unix.Mount(fdPath(null), fdPath(fd), "", unix.MS_BIND, "")
		}
		unix.Close(fd)
		if err != nil {
			return &os.PathError{Op: "mask", Path: p, Err: err}
		}
	}
	for _, p := range readOnlyPaths {
		fd, err := openInRoot(rootfd, p, unix.O_PATH|unix.O_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		err = unix.Mount(fdPath(fd), fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
		unix.Close(fd)
		if err != nil {
			return &os.PathError{Op: "bind read-only", Path: p, Err: err}
		}
		if err := setReadOnly(rootfd, p, true); err != nil {
			return err
		}
	}
	return nil
}

// privilegedTrees mounts a privileged app's /dev (the host's, with
// every mount under it), /proc (the pod's, nothing masked) and /sys
// (writable).
func privilegedTrees(rootfd int) error {
	if err := bindSystemTree(rootfd, "/dev", "/dev"); err != nil {
		return err
	}
	if err := mountIn(rootfd, "proc", "/proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	return mountIn(rootfd, "sysfs", "/sys", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

// mountCgroups shows the app's control groups read-only: one group on
// /sys/fs/cgroup, or several (v1 hierarchies) each on its directory of
// a read-only tmpfs there.
func mountCgroups(rootfd int, mounts []Mount) error {
	switch {
	case len(mounts) == 0:
		return nil
	case len(mounts) > 1 || mounts[0].Target != "/sys/fs/cgroup":
		tfd, err := mkTarget(rootfd, "/sys/fs/cgroup", false)
		if err != nil {
			return err
		}
		err = unix.Mount("cgroup", fdPath(tfd), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=64k")
		unix.Close(tfd)
		if err != nil {
			return &os.PathError{Op: "mount tmpfs on", Path: "/sys/fs/cgroup", Err: err}
		}
		for _, m := range mounts {
			if err := bindInRoot(rootfd, m.Source, m.Target, false, true); err != nil {
				return err
			}
		}
		return setReadOnly(rootfd, "/sys/fs/cgroup", false)
	}
	return bindInRoot(rootfd, mounts[0].Source, mounts[0].Target, false, true)
}

// oomKills reads the oom_kill counter of a cgroup's memory.events (v2)
// or memory.oom_control (v1); 0 when there is none.
func oomKills(file string) int {
	if file == "" {
		return 0
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
