package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DevicePolicy says what happens to character and block device entries.
type DevicePolicy int

const (
	// DevicesReject makes a device entry an error (the default).
	DevicesReject DevicePolicy = iota
	// DevicesSkip ignores device entries.
	DevicesSkip
	// DevicesCreate creates device nodes (this needs CAP_MKNOD). The pod's
	// root filesystem is mounted nodev all the same.
	DevicesCreate
)

func (p DevicePolicy) String() string {
	switch p {
	case DevicesReject:
		return "reject"
	case DevicesSkip:
		return "skip"
	case DevicesCreate:
		return "create"
	}
	return fmt.Sprintf("DevicePolicy(%d)", int(p))
}

// Options control how entries are written.
type Options struct {
	Devices DevicePolicy
	// Unprivileged writes as an ordinary user would even when running as
	// root: no ownership, no setuid/setgid bits. Without it, ownership is
	// kept whenever the process's effective user is root.
	Unprivileged bool
}

// ErrDevice is returned for a device entry under DevicesReject.
var ErrDevice = errors.New("device nodes are not allowed (set the device policy to skip or create them)")

// A Root is a directory opened for writing untrusted entries into it.
type Root struct {
	mu         sync.Mutex
	dir        string
	fd         int
	opts       Options
	privileged bool
	dirs       map[string]dirMeta // metadata applied at Close
}

type dirMeta struct {
	mode     uint32
	uid, gid int
	mtime    time.Time
}

// Open opens dir, which must exist, as a Root.
func Open(dir string, opts Options) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open root", Path: dir, Err: err}
	}
	return &Root{
		dir:        dir,
		fd:         fd,
		opts:       opts,
		privileged: os.Geteuid() == 0 && !opts.Unprivileged,
		dirs:       map[string]dirMeta{},
	}, nil
}

// Dir is the directory the root was opened on.
func (r *Root) Dir() string { return r.dir }

// Create writes one entry. h.Name is relative to the root ("" or "." is
// the root itself, which can only be a directory). Supported types are
// directories, regular files (body holds h.Size bytes), symlinks, hard
// links (h.Linkname relative to the root as well), FIFOs and devices as the
// DevicePolicy says. An entry replaces whatever is at its path, except that
// a directory over a directory merges.
func (r *Root) Create(h *tar.Header, body io.Reader) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.create(h, body)
}

func (r *Root) create(h *tar.Header, body io.Reader) error {
	name, err := Clean(h.Name)
	if err != nil {
		return err
	}
	if h.Uid < 0 || h.Gid < 0 || int64(h.Uid) > 1<<32-2 || int64(h.Gid) > 1<<32-2 {
		return &NameError{name, fmt.Sprintf("has an invalid owner %d:%d", h.Uid, h.Gid)}
	}
	if name == "" {
		if h.Typeflag != tar.TypeDir {
			return &NameError{h.Name, "is the root but not a directory"}
		}
		r.dirs[""] = r.meta(h)
		return nil
	}
	if h.Typeflag == tar.TypeChar && h.Devmajor == 0 && h.Devminor == 0 {
		// An overlayfs whiteout: it would hide files of lower layers
		// when stacked, but not when copied.
		return &NameError{name, "is a 0/0 character device (an overlayfs whiteout)"}
	}
	if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
		switch r.opts.Devices {
		case DevicesSkip:
			return nil
		case DevicesReject:
			return &os.PathError{Op: "create device", Path: name, Err: ErrDevice}
		}
	}
	dir, base := path.Split(name)
	pfd, err := r.mkdirAll(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return err
	}
	if pfd != r.fd {
		defer unix.Close(pfd)
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return r.mkdir(pfd, name, base, h)
	case tar.TypeReg:
		return r.writeFile(pfd, name, base, h, body)
	case tar.TypeSymlink:
		return r.symlink(pfd, name, base, h)
	case tar.TypeLink:
		return r.link(pfd, name, base, h)
	case tar.TypeFifo:
		return r.mknod(pfd, name, base, h, unix.S_IFIFO, 0)
	case tar.TypeChar:
		return r.mknod(pfd, name, base, h, unix.S_IFCHR, unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))
	case tar.TypeBlock:
		return r.mknod(pfd, name, base, h, unix.S_IFBLK, unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))
	}
	return &NameError{name, fmt.Sprintf("has an unsupported entry type %q", h.Typeflag)}
}

// mode is the permission part of h.Mode that may be applied.
func (r *Root) mode(h *tar.Header) uint32 {
	m := uint32(h.Mode & 0o7777)
	if !r.privileged {
		m &^= unix.S_ISUID | unix.S_ISGID
	}
	return m
}

func (r *Root) meta(h *tar.Header) dirMeta {
	m := r.mode(h)
	if !r.privileged {
		m |= 0o700 // stay writable and removable by the owner
	}
	return dirMeta{mode: m, uid: h.Uid, gid: h.Gid, mtime: h.ModTime}
}

// openat2 resolves name beneath the root without following any symlink:
// a symlink anywhere on the way is ELOOP.
func (r *Root) openat2(name string, flags uint64) (int, error) {
	if name == "" {
		name = "."
	}
	how := unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 16 {
		fd, err := unix.Openat2(r.fd, name, &how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// ErrThroughSymlink is returned for an entry whose path goes through a
// symbolic link: entries are never written through symlinks.
var ErrThroughSymlink = errors.New("path goes through a symlink (entries are never written through symlinks)")

func resolveErr(err error) error {
	if err == unix.ELOOP {
		return ErrThroughSymlink
	}
	return err
}

// mkdirAll returns an O_PATH descriptor of directory dir inside the root,
// creating missing components. A symlink on the way is an error.
func (r *Root) mkdirAll(dir string) (int, error) {
	if dir == "" {
		return r.fd, nil
	}
	fd, err := r.openat2(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil {
		return fd, nil
	}
	if err != unix.ENOENT {
		return -1, &os.PathError{Op: "open parent directory", Path: dir, Err: resolveErr(err)}
	}
	comps := strings.Split(dir, "/")
	prev := r.fd
	closePrev := func() {
		if prev != r.fd {
			unix.Close(prev)
		}
	}
	for i, c := range comps {
		p := strings.Join(comps[:i+1], "/")
		fd, err := r.openat2(p, unix.O_PATH|unix.O_DIRECTORY)
		if err == unix.ENOENT {
			if err := unix.Mkdirat(prev, c, 0o755); err != nil && err != unix.EEXIST {
				closePrev()
				return -1, &os.PathError{Op: "create parent directory", Path: p, Err: err}
			}
			fd, err = r.openat2(p, unix.O_PATH|unix.O_DIRECTORY)
		}
		closePrev()
		if err != nil {
			return -1, &os.PathError{Op: "create parent directory", Path: p, Err: resolveErr(err)}
		}
		prev = fd
	}
	return prev, nil
}

// clear makes room for an entry at base in the directory pfd. It reports
// whether a directory is already there when a directory is wanted.
func (r *Root) clear(pfd int, name, base string, wantDir bool) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return false, nil
	}
	if err != nil {
		return false, &os.PathError{Op: "lstat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if wantDir {
			return true, nil
		}
		r.forgetDir(name)
		if err := removeAt(pfd, base); err != nil {
			return false, &os.PathError{Op: "replace directory", Path: name, Err: err}
		}
		return false, nil
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return false, &os.PathError{Op: "replace", Path: name, Err: err}
	}
	return false, nil
}

// forgetDir drops the recorded metadata of a directory being replaced.
// That of its descendants stays: at Close their paths are gone or were
// made again by later entries of the same archive, whose author chose both
// (so nothing is gained by a scan, which a hostile archive could make
// quadratic).
func (r *Root) forgetDir(name string) {
	delete(r.dirs, name)
}

func (r *Root) mkdir(pfd int, name, base string, h *tar.Header) error {
	exists, err := r.clear(pfd, name, base, true)
	if err != nil {
		return err
	}
	if !exists {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return &os.PathError{Op: "mkdir", Path: name, Err: err}
		}
	}
	r.dirs[name] = r.meta(h)
	return nil
}

func (r *Root) writeFile(pfd int, name, base string, h *tar.Header, body io.Reader) error {
	if _, err := r.clear(pfd, name, base, false); err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(body, h.Size))
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if n != h.Size {
		return fmt.Errorf("write %s: %w after %d of %d bytes", name, io.ErrUnexpectedEOF, n, h.Size)
	}
	if r.privileged {
		if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
			return &os.PathError{Op: "chown", Path: name, Err: err}
		}
	}
	// After chown, which clears setuid/setgid.
	if err := unix.Fchmod(fd, r.mode(h)); err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	if err := futimens(fd, h.ModTime); err != nil {
		return &os.PathError{Op: "set times", Path: name, Err: err}
	}
	return f.Close()
}

func (r *Root) symlink(pfd int, name, base string, h *tar.Header) error {
	if err := checkLinkTarget(name, h.Linkname); err != nil {
		return err
	}
	if _, err := r.clear(pfd, name, base, false); err != nil {
		return err
	}
	if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
		return &os.PathError{Op: "symlink", Path: name, Err: err}
	}
	return r.setMetaAt(pfd, name, base, h, false)
}

func (r *Root) link(pfd int, name, base string, h *tar.Header) error {
	target, err := Clean(h.Linkname)
	if err != nil {
		return fmt.Errorf("hard link %s: target: %w", name, err)
	}
	if target == "" || target == name {
		return &NameError{name, fmt.Sprintf("is a hard link to %q", h.Linkname)}
	}
	src, err := r.openat2(target, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return &os.PathError{Op: "hard link " + name + " to", Path: target, Err: resolveErr(err)}
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return &os.PathError{Op: "stat", Path: target, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return &NameError{name, fmt.Sprintf("is a hard link to directory %q", target)}
	}
	if _, err := r.clear(pfd, name, base, false); err != nil {
		return err
	}
	err = unix.ENOENT
	if r.privileged {
		err = unix.Linkat(src, "", pfd, base, unix.AT_EMPTY_PATH)
	}
	if err == unix.ENOENT || err == unix.EPERM {
		// Without CAP_DAC_READ_SEARCH, link through the descriptor's
		// procfs entry.
		err = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", src), pfd, base, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return &os.PathError{Op: "hard link " + target + " to", Path: name, Err: err}
	}
	return nil
}

func (r *Root) mknod(pfd int, name, base string, h *tar.Header, typ uint32, dev uint64) error {
	if _, err := r.clear(pfd, name, base, false); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, base, typ|0o600, int(dev)); err != nil {
		return &os.PathError{Op: "mknod", Path: name, Err: err}
	}
	return r.setMetaAt(pfd, name, base, h, true)
}

// setMetaAt sets owner, mode and times of base in pfd without following it.
func (r *Root) setMetaAt(pfd int, name, base string, h *tar.Header, chmod bool) error {
	if r.privileged {
		if err := unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: name, Err: err}
		}
	}
	if chmod {
		// Not a symlink (checked by the caller), so fchmodat cannot follow.
		if err := unix.Fchmodat(pfd, base, r.mode(h), 0); err != nil {
			return &os.PathError{Op: "chmod", Path: name, Err: err}
		}
	}
	ts := timespecs(h.ModTime)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "set times", Path: name, Err: err}
	}
	return nil
}

// Close applies the owner, mode and times of the directory entries (late,
// so that a read-only directory can still be filled and its times are not
// changed by its children) and closes the root.
func (r *Root) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd < 0 {
		return nil
	}
	var errs []error
	for name, m := range r.dirs {
		if err := r.applyDir(name, m); err != nil {
			errs = append(errs, err)
		}
	}
	r.dirs = nil
	errs = append(errs, unix.Close(r.fd))
	r.fd = -1
	return errors.Join(errs...)
}

func (r *Root) applyDir(name string, m dirMeta) error {
	fd, err := r.openat2(name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		// Replaced by a later entry, which then rules.
		return nil
	}
	defer unix.Close(fd)
	if r.privileged {
		if err := unix.Fchown(fd, m.uid, m.gid); err != nil {
			return &os.PathError{Op: "chown", Path: name, Err: err}
		}
	}
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return &os.PathError{Op: "chmod", Path: name, Err: err}
	}
	if err := futimens(fd, m.mtime); err != nil {
		return &os.PathError{Op: "set times", Path: name, Err: err}
	}
	return nil
}

func timespecs(mtime time.Time) [2]unix.Timespec {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if mtime.IsZero() {
		ts = unix.NsecToTimespec(0)
	}
	return [2]unix.Timespec{ts, ts}
}

// futimens sets the access and modification times of an open file.
func futimens(fd int, mtime time.Time) error {
	ts := timespecs(mtime)
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// removeAt removes base in directory dfd and everything under it, never
// following a symlink.
func removeAt(dfd int, base string) error {
	fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			if err := unix.Unlinkat(fd, n, 0); err == unix.EISDIR || err == unix.EPERM {
				if err := removeAt(fd, n); err != nil {
					return err
				}
			} else if err != nil && err != unix.ENOENT {
				return err
			}
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	return unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR)
}
