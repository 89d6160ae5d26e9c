package boot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The initramfs is the kernel's rootfs, the one mount with no parent, so
// pivot_root(2) refuses it and so would every container runtime after us.
// There are two ways off it:
//
//   - When the rootfs is a tmpfs (the kernel makes it one when no root=
//     is given, as Kurma boots), bindRootfs bind-mounts it onto a
//     directory and moves that mount over /: the root is then a tmpfs
//     mount with a parent, and pivot_root works. Nothing is copied and
//     no exec is needed: under TCG this takes a few ms where copying the
//     image takes half a second (docs/boot.md).
//   - When the rootfs is a ramfs (root= was given), moveToTmpfs copies
//     its files into a new tmpfs (deleting each original to give its
//     memory back), moves the API filesystems across, makes the tmpfs
//     the root with MS_MOVE and chroot, and the caller exec's /init again
//     in it.

const newRoot = "/.kurma-root"

// onInitramfs reports whether / is the kernel's initial rootfs: a ramfs or
// tmpfs that we have not switched away from yet.
func onInitramfs() bool {
	if os.Getenv(envTimeline) != "" {
		return false // the /init that switched exec'd us
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return false
	}
	return st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC
}

// rootfsIsTmpfs reports whether the initramfs is a tmpfs.
func rootfsIsTmpfs() bool {
	var st unix.Statfs_t
	return unix.Statfs("/", &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// bindRootfs makes a bind mount of the (tmpfs) rootfs the root.
func bindRootfs() error {
	if err := os.Mkdir(newRoot, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("/", newRoot, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind / on %s: %w", newRoot, err)
	}
	if err := enterNewRoot(); err != nil {
		return err
	}
	// The directory the bind was made on is in the new root too (it is
	// the same filesystem); it is no mount point any more.
	return os.Remove(newRoot)
}

// enterNewRoot moves the API filesystems into newRoot, then newRoot over
// /, and chroots into it.
func enterNewRoot() error {
	for _, m := range movedMounts {
		target := newRoot + m
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m, target, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s to %s: %w", m, target, err)
		}
	}
	if err := os.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return os.Chdir("/")
}

// moveToTmpfs does everything before the exec: afterwards / is the tmpfs
// and the process is chrooted into it.
func moveToTmpfs() error {
	if err := os.Mkdir(newRoot, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", newRoot, err)
	}
	var rootSt unix.Stat_t
	if err := unix.Lstat("/", &rootSt); err != nil {
		return err
	}
	if err := copyRoot(rootSt.Dev); err != nil {
		return err
	}
	return enterNewRoot()
}

// copyRoot copies every file of the rootfs (device dev) into newRoot and
// removes the original, leaving mount points and newRoot itself alone.
func copyRoot(dev uint64) error {
	var dirs []string
	err := filepath.WalkDir("/", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == newRoot {
			return fs.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		if st.Dev != dev {
			return fs.SkipDir // a mount point: moved, not copied
		}
		target := filepath.Join(newRoot, path)
		mode := fileMode(st.Mode)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if path != "/" {
				if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
					return err
				}
				dirs = append(dirs, path)
			}
			return nil
		case unix.S_IFREG:
			if err := copyFile(path, target, mode); err != nil {
				return err
			}
		case unix.S_IFLNK:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		default: // device nodes, fifos, sockets
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", target, err)
			}
		}
		// The copy is made: free the initramfs's memory for this file.
		return os.Remove(path)
	})
	if err != nil {
		return fmt.Errorf("copy initramfs into tmpfs: %w", err)
	}
	// Directory modes last, so read-only ones could be filled; remove
	// the now empty originals deepest first (mount points stay).
	for i := len(dirs) - 1; i >= 0; i-- {
		var st unix.Stat_t
		if err := unix.Lstat(dirs[i], &st); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(newRoot, dirs[i]), fileMode(st.Mode)); err != nil {
			return err
		}
		_ = unix.Rmdir(dirs[i]) // a mount point or a non-empty dir stays; it is hidden under the new root
	}
	return nil
}

// fileMode turns a stat(2) mode into the permission and special bits of
// an os.FileMode.
func fileMode(m uint32) os.FileMode {
	out := os.FileMode(m & 0o777)
	if m&unix.S_ISVTX != 0 {
		out |= os.ModeSticky
	}
	if m&unix.S_ISUID != 0 {
		out |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		out |= os.ModeSetgid
	}
	return out
}

func copyFile(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Chmod(to, mode) // OpenFile's mode is masked by the umask
}
