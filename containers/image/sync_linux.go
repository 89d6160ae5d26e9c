package image

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/atomicfile"
)

// syncTree makes everything written under dir durable: one syncfs(2) of
// its filesystem rather than an fsync of every extracted file.
func syncTree(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// renameDurably moves a complete directory into place and syncs both
// parents.
func renameDurably(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(filepath.Dir(to)); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(from))
}
