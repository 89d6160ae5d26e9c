package stage

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A pod in a user namespace: its apps run in a user namespace of their
// own whose IDs 0 to 65535 are a range of the host's, with UTS, IPC and
// network namespaces owned by it, so that the apps' root is root in
// them (it may bind low ports, set the hostname) and no one on the host.
//
// The daemon makes those namespaces (NewNamespaces) and hands them to the
// init with MsgPrepare. The init itself stays the host's root in
// namespaces of its own, as for any pod: it mounts the apps' roots and
// places their processes in their control groups with the host's
// privileges, and each process of an app joins the pod's namespaces,
// user namespace last, between fork and exec (see forkExec). The apps'
// mount and PID namespaces are the init's: they belong to the host's
// user namespace, so the apps' root can mount nothing, even with
// CAP_SYS_ADMIN (which is the user namespace's).

// Namespaces are namespaces made for a pod, held open by descriptors.
type Namespaces struct {
	// Kinds are "user", "ipc", "net", "uts" (see NewNamespaces), in the
	// order of Files.
	Kinds []string
	Files []*os.File
}

// File is the namespace of the kind, or nil.
func (n *Namespaces) File(kind string) *os.File {
	if n == nil {
		return nil
	}
	for i, k := range n.Kinds {
		if k == kind {
			return n.Files[i]
		}
	}
	return nil
}

// Close closes the descriptors; the namespaces end with their last one.
func (n *Namespaces) Close() {
	if n != nil {
		closeAll(n.Files)
	}
}

// fds are the descriptors, for a message.
func (n *Namespaces) fds() []int {
	fds := make([]int, len(n.Files))
	for i, f := range n.Files {
		fds[i] = int(f.Fd())
	}
	return fds
}

// nsFlags are the clone flags of each kind of namespace.
var nsFlags = map[string]uintptr{
	"user": unix.CLONE_NEWUSER, "ipc": unix.CLONE_NEWIPC, "net": unix.CLONE_NEWNET, "uts": unix.CLONE_NEWUTS,
}

// NewNamespaces makes a user namespace with the ID mapping m (users and
// groups alike, setgroups allowed) and, owned by it, an IPC namespace
// and, when asked, network and UTS namespaces. The daemon calls it: a
// child is cloned into them, holds them while their descriptors are
// opened, and exits; nothing of it runs but a few system calls.
func NewNamespaces(m IDMap, network, uts bool) (*Namespaces, error) {
	ns := &Namespaces{Kinds: []string{"user", "ipc"}}
	if network {
		ns.Kinds = append(ns.Kinds, "net")
	}
	if uts {
		ns.Kinds = append(ns.Kinds, "uts")
	}
	flags := uintptr(unix.SIGCHLD)
	for _, k := range ns.Kinds {
		flags |= nsFlags[k]
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	pid, errno := holdInChild(flags, pipe)
	unix.Close(pipe[0])
	if errno != 0 {
		unix.Close(pipe[1])
		if errno == unix.ENOSPC {
			return nil, fmt.Errorf("clone into new namespaces: %w (the kernel allows no more user namespaces: /proc/sys/user/max_user_namespaces)", errno)
		}
		return nil, fmt.Errorf("clone into new namespaces: %w", errno)
	}
	err := ns.open(pid, m)
	unix.Close(pipe[1]) // the child exits
	for {
		_, werr := unix.Wait4(pid, nil, 0, nil)
		if werr != unix.EINTR {
			break
		}
	}
	if err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// open writes the child's ID maps and opens its namespaces.
func (ns *Namespaces) open(pid int, m IDMap) error {
	proc := "/proc/" + strconv.Itoa(pid) + "/"
	for _, f := range []string{"uid_map", "gid_map"} {
		if err := os.WriteFile(proc+f, []byte(m.String()), 0); err != nil {
			return fmt.Errorf("user namespace: %w", err)
		}
	}
	for _, k := range ns.Kinds {
		f, err := os.Open(proc + "ns/" + k)
		if err != nil {
			return err
		}
		ns.Files = append(ns.Files, f)
	}
	return nil
}

// holdInChild clones a child with flags that waits until the write end
// of pipe closes, then exits. As in forkAndExecInChild, the child makes
// only raw system calls.
//
//go:noinline
//go:norace
//go:nocheckptr
func holdInChild(flags uintptr, pipe [2]int) (pid int, err syscall.Errno) {
	var (
		r1   uintptr
		err1 syscall.Errno
		b    [1]byte
	)
	runtime_BeforeFork()
	r1, _, err1 = syscall.RawSyscall6(unix.SYS_CLONE, flags, 0, 0, 0, 0, 0)
	if err1 != 0 || r1 != 0 {
		runtime_AfterFork()
		return int(r1), err1
	}
	runtime_AfterForkInChild()
	syscall.RawSyscall(unix.SYS_CLOSE, uintptr(pipe[1]), 0, 0)
	for {
		_, _, err1 = syscall.RawSyscall(unix.SYS_READ, uintptr(pipe[0]), uintptr(unsafe.Pointer(&b[0])), 1)
		if err1 != syscall.EINTR {
			break
		}
	}
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
}

// receiveNamespaces pairs the descriptors of MsgPrepare with their kinds;
// none is nil (the pod's namespaces are the init's).
func receiveNamespaces(kinds []string, files []*os.File) (*Namespaces, error) {
	if len(kinds) == 0 && len(files) == 0 {
		return nil, nil
	}
	if len(kinds) != len(files) {
		closeAll(files)
		return nil, fmt.Errorf("%d namespaces announced, %d descriptors received", len(kinds), len(files))
	}
	for _, k := range kinds {
		if _, ok := nsFlags[k]; !ok {
			closeAll(files)
			return nil, fmt.Errorf("unknown namespace %q", k)
		}
	}
	if len(kinds) > 0 && kinds[0] != "user" {
		closeAll(files)
		return nil, fmt.Errorf("the pod's namespaces come without a user namespace")
	}
	return &Namespaces{Kinds: kinds, Files: files}, nil
}

// joins lists the setns(2) calls that put a process in the pod's
// namespaces: the user namespace last, since joining it ends the
// process's privileges over the others.
func (n *Namespaces) joins() []nsJoin {
	if n == nil {
		return nil
	}
	var js []nsJoin
	for i := len(n.Kinds) - 1; i >= 0; i-- {
		js = append(js, nsJoin{fd: uintptr(n.Files[i].Fd()), kind: nsFlags[n.Kinds[i]]})
	}
	return js
}

// nsJoin is one setns(2) of a process being started.
type nsJoin struct {
	fd, kind uintptr
}

// inPodNamespaces runs fn on a fresh thread that has joined the pod's
// UTS, IPC and network namespaces (those it has), but not its user
// namespace: the init stays the host's root there, able to set the
// pod's hostname and sysctls, bring its loopback up and mount its
// sysfs. Without a user namespace (n nil) the pod's namespaces are the
// init's own, and fn runs where it is called.
func (n *Namespaces) inPodNamespaces(fn func() error) error {
	if n == nil {
		return fn()
	}
	return onThread(func() error {
		for _, j := range n.joins() {
			if j.kind == unix.CLONE_NEWUSER {
				continue
			}
			if err := unix.Setns(int(j.fd), int(j.kind)); err != nil {
				return fmt.Errorf("join the pod's namespaces: %w", err)
			}
		}
		return fn()
	})
}

// mountLayers mounts the image store (src) on target with the pod's ID
// mapping, read-only: a file that the store has as owned by 0 is owned
// by the pod's HostID, so by the pod's root inside. Overlayfs takes
// ID-mapped lower layers since Linux 5.19; the filesystem must allow
// ID-mapped mounts (ext4, xfs, btrfs; tmpfs since 6.3).
func mountLayers(src, target string, userns *os.File) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: src, Err: err}
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return &os.PathError{Op: "ID-map", Path: src, Err: err}
	}
	if err := os.Mkdir(target, 0o700); err != nil {
		return err
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "attach", Path: target, Err: err}
	}
	return nil
}
