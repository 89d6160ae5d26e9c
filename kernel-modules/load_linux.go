package kmod

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var errExist error = unix.EEXIST

// finitModule inserts a module file with finit_module(2).
func finitModule(file, params string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), params, 0)
}

// describe names an errno the way kernel people read it: "ENODEV (no such
// device)".
func describe(err error) string {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	if name := unix.ErrnoName(errno); name != "" {
		return name + " (" + errno.Error() + ")"
	}
	return errno.Error()
}
