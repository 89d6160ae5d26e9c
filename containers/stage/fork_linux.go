package stage

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Processes of a pod are started by forkExec rather than
// syscall.ForkExec: what confines them (the capability bounding set,
// no_new_privs, seccomp filters, oom_score_adj, v1 control groups) must
// be set in the new process itself between fork and exec, and a seccomp
// filter cannot be set on a thread of the init, whose Go runtime would
// then be subject to it. As in package syscall, the child runs only raw
// system calls on what the parent prepared: it may not allocate, take a
// lock or grow its stack.

//go:linkname runtime_BeforeFork syscall.runtime_BeforeFork
func runtime_BeforeFork()

//go:linkname runtime_AfterFork syscall.runtime_AfterFork
func runtime_AfterFork()

//go:linkname runtime_AfterForkInChild syscall.runtime_AfterForkInChild
func runtime_AfterForkInChild()

// forkSpec is everything the child needs, prepared by the parent.
type forkSpec struct {
	argv0      *byte
	argv, envv []*byte
	dir        *byte
	fds        []int
	tty        bool
	uid, gid   uintptr
	groups     []uint32
	// cgroupProcs are v1 cgroup.procs files open for writing: the child
	// writes "0" (itself) to each.
	cgroupProcs []int
	zero        *byte
	clone3      *cloneArgs // CLONE_INTO_CGROUP; nil: clone(2)
	oomPath     *byte      // /proc/self/oom_score_adj
	oomValue    []byte
	drop        []uintptr // capabilities dropped from the bounding set
	capHdr      unix.CapUserHeader
	capAll      [2]unix.CapUserData
	capFinal    [2]unix.CapUserData
	nnp         bool
	filters     []unix.SockFprog
	joins       []nsJoin // the pod's namespaces, joined in this order
	pipe        int      // write end: the child reports a failure on it
	// vfork shares the init's memory with the child until it execs
	// (CLONE_VM|CLONE_VFORK), as package syscall does: no copy of the
	// init's page tables, no copy-on-write faults after. A child that
	// joins a user namespace cannot (setns refuses a shared mm).
	vfork bool
}

// oomScoreAdjPath is what every child opens, NUL-terminated for the raw
// system call.
var oomScoreAdjPath = []byte("/proc/self/oom_score_adj\x00")

// cloneArgs is struct clone_args (version 2, with cgroup).
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls, setTID, setTIDSize, cgroup uint64
}

// Steps of the child, reported with the error of the one that failed.
var forkSteps = []string{"setsid", "join cgroup", "open oom_score_adj", "write oom_score_adj", "set up descriptors",
	"set controlling terminal", "chdir", "drop bounding capabilities", "keep capabilities", "setgroups", "setresgid",
	"setresuid", "raise capabilities", "set no_new_privs", "install seccomp filter", "set capabilities", "execve", "clear ambient capabilities",
	"join the pod's namespaces"}

// hostRoot is a descriptor of the init's root, the host's: processes
// are started from threads whose root is an app's, where the host's
// control groups are not to be seen.
var hostRoot = -1

// openHostRoot opens hostRoot; Main calls it first.
func openHostRoot() error {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	hostRoot = fd
	return nil
}

// openHost opens an absolute path of the host (control groups, which
// hold no symlink) whatever the calling thread's root.
func openHost(name string, flags int) (int, error) {
	fd, err := unix.Openat(hostRoot, strings.TrimPrefix(name, "/"), flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return fd, nil
}

// permitted is the init's permitted capability set: what its processes
// may keep (a host may run Kurma without some).
var permitted = sync.OnceValues(func() ([2]unix.CapUserData, error) {
	var data [2]unix.CapUserData
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	err := unix.Capget(&hdr, &data[0])
	return data, err
})

var lastCap = sync.OnceValues(func() (int, error) {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
})

// forkExec starts p from the calling thread (its mount namespace and
// root) and returns its PID.
func forkExec(p procSpec) (int, error) {
	var s forkSpec
	var err error
	if s.argv0, err = syscall.BytePtrFromString(p.path); err != nil {
		return 0, err
	}
	if s.argv, err = syscall.SlicePtrFromStrings(p.argv); err != nil {
		return 0, err
	}
	if s.envv, err = syscall.SlicePtrFromStrings(p.env); err != nil {
		return 0, err
	}
	if s.dir, err = syscall.BytePtrFromString(p.dir); err != nil {
		return 0, err
	}
	for _, f := range p.files {
		s.fds = append(s.fds, int(f))
	}
	s.tty = p.tty
	s.uid, s.gid = uintptr(p.cred.Uid), uintptr(p.cred.Gid)
	s.groups = p.cred.Groups
	s.zero = &[]byte("0")[0]
	s.joins = p.ns
	s.vfork = canVfork
	for _, j := range s.joins {
		if j.kind == unix.CLONE_NEWUSER {
			s.vfork = false
		}
	}
	if err := s.isolation(p.iso); err != nil {
		return 0, err
	}
	if cg := p.cgroup; cg != nil {
		for _, d := range cg.V1 {
			fd, err := openHost(d+"/cgroup.procs", unix.O_WRONLY)
			if err != nil {
				closeFDs(s.cgroupProcs)
				return 0, &os.PathError{Op: "open", Path: d + "/cgroup.procs", Err: err}
			}
			s.cgroupProcs = append(s.cgroupProcs, fd)
		}
		defer closeFDs(s.cgroupProcs)
		if cg.V2 != "" {
			fd, err := openHost(cg.V2, unix.O_PATH|unix.O_DIRECTORY)
			if err != nil {
				return 0, &os.PathError{Op: "open", Path: cg.V2, Err: err}
			}
			defer unix.Close(fd)
			s.clone3 = &cloneArgs{flags: unix.CLONE_INTO_CGROUP, exitSignal: uint64(unix.SIGCHLD), cgroup: uint64(fd)}
		}
	}
	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	s.pipe = pipe[1]
	syscall.ForkLock.Lock()
	pid, errno := forkAndExecInChild(&s)
	runtime_AfterFork()
	syscall.ForkLock.Unlock()
	unix.Close(pipe[1])
	defer unix.Close(pipe[0])
	if errno != 0 {
		return 0, fmt.Errorf("fork: %w", errno)
	}
	var report [8]byte
	n, err := readFull(pipe[0], report[:])
	if err != nil || n == 0 {
		return pid, nil // the pipe closed at execve: started
	}
	// The child failed and exits; the reaper collects it.
	step, e := binary.NativeEndian.Uint32(report[:4]), syscall.Errno(binary.NativeEndian.Uint32(report[4:]))
	name := "start"
	if int(step) < len(forkSteps) {
		name = forkSteps[step]
	}
	return 0, fmt.Errorf("%s: %w", name, e)
}

func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || m == 0 {
			return n, err
		}
		n += m
	}
	return n, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// isolation prepares what iso asks of the child.
func (s *forkSpec) isolation(iso *Isolation) error {
	last, err := lastCap()
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	perm, err := permitted()
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	s.capHdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	keep := make([]bool, last+1)
	for c := 0; c <= last; c++ {
		keep[c] = iso == nil || iso.AllCapabilities
	}
	for i := range perm {
		s.capAll[i].Effective, s.capAll[i].Permitted = perm[i].Permitted, perm[i].Permitted
	}
	if iso != nil {
		for _, c := range iso.Capabilities {
			if c >= 0 && c <= last {
				keep[c] = true
			}
		}
	}
	for c, k := range keep {
		if !k {
			s.drop = append(s.drop, uintptr(c))
			continue
		}
		bit := uint32(1) << (c % 32)
		if perm[c/32].Permitted&bit != 0 {
			s.capFinal[c/32].Effective |= bit
			s.capFinal[c/32].Permitted |= bit
		}
	}
	// Every process gets an oom_score_adj of its own: the init's is
	// -1000, and inherited.
	oom := appOOMScoreAdj
	if iso != nil && iso.OOMScoreAdj != nil {
		oom = *iso.OOMScoreAdj
	}
	s.oomPath = &oomScoreAdjPath[0]
	s.oomValue = []byte(strconv.Itoa(oom))
	if iso == nil {
		return nil
	}
	s.nnp = iso.NoNewPrivileges
	for _, f := range iso.Seccomp {
		if len(f) == 0 {
			continue
		}
		s.filters = append(s.filters, unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
	}
	return nil
}

// forkAndExecInChild forks; the child sets itself up as s says and
// execs. After the fork the child makes only raw system calls (see
// package syscall's forkAndExecInChild1, which this follows). The
// caller calls runtime_AfterFork after it: with vfork the child runs on
// this frame, so the parent returns at once, using nothing but what
// vforkSyscall returned.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkAndExecInChild(s *forkSpec) (pid int, err syscall.Errno) {
	var (
		r1, nextfd, fd1 uintptr
		i, step         int
		err1            syscall.Errno
		report          [2]uint32
		fd              []int
	)
	fd = s.fds
	runtime_BeforeFork() // no stack growth from here on
	switch {
	case s.clone3 != nil && s.vfork:
		s.clone3.flags |= unix.CLONE_VM | unix.CLONE_VFORK
		r1, err1 = vforkSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(s.clone3)), unsafe.Sizeof(*s.clone3), 0)
	case s.clone3 != nil:
		r1, _, err1 = syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(s.clone3)), unsafe.Sizeof(*s.clone3), 0)
	case s.vfork:
		r1, err1 = vforkSyscall(unix.SYS_CLONE, uintptr(unix.SIGCHLD|unix.CLONE_VM|unix.CLONE_VFORK), 0, 0)
	default:
		r1, _, err1 = syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	}
	if err1 != 0 || r1 != 0 {
		return int(r1), err1
	}

	// The child.
	runtime_AfterForkInChild()
	step = 0
	if _, _, err1 = syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0); err1 != 0 {
		goto childerror
	}
	step = 1
	for i = 0; i < len(s.cgroupProcs); i++ {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_WRITE, uintptr(s.cgroupProcs[i]), uintptr(unsafe.Pointer(s.zero)), 1); err1 != 0 {
			goto childerror
		}
	}
	if s.oomPath != nil {
		step = 2
		fd1, _, err1 = syscall.RawSyscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(s.oomPath)), unix.O_WRONLY|unix.O_CLOEXEC, 0, 0, 0)
		if err1 != 0 {
			goto childerror
		}
		step = 3
		if _, _, err1 = syscall.RawSyscall(unix.SYS_WRITE, fd1, uintptr(unsafe.Pointer(&s.oomValue[0])), uintptr(len(s.oomValue))); err1 != 0 {
			goto childerror
		}
		syscall.RawSyscall(unix.SYS_CLOSE, fd1, 0, 0)
	}
	// The pod's namespaces, while the child is still the host's root:
	// the user namespace last (then its capabilities are that
	// namespace's, full until they are set below).
	step = 18
	for i = 0; i < len(s.joins); i++ {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, s.joins[i].fd, s.joins[i].kind, 0); err1 != 0 {
			goto childerror
		}
	}

	// Descriptors: fd[i] becomes i. Pass 1 moves those that pass 2
	// would overwrite above every one in use, the pipe too.
	step = 4
	nextfd = uintptr(len(fd))
	for i = 0; i < len(fd); i++ {
		if uintptr(fd[i]) >= nextfd {
			nextfd = uintptr(fd[i]) + 1
		}
	}
	if uintptr(s.pipe) >= nextfd {
		nextfd = uintptr(s.pipe) + 1
	}
	if s.pipe < len(fd) {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(s.pipe), nextfd, unix.O_CLOEXEC); err1 != 0 {
			goto childerror
		}
		s.pipe = int(nextfd)
		nextfd++
	}
	for i = 0; i < len(fd); i++ {
		if fd[i] >= 0 && fd[i] < i {
			if _, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fd[i]), nextfd, unix.O_CLOEXEC); err1 != 0 {
				goto childerror
			}
			fd[i] = int(nextfd)
			nextfd++
		}
	}
	for i = 0; i < len(fd); i++ {
		if fd[i] == i {
			if _, _, err1 = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0); err1 != 0 {
				goto childerror
			}
			continue
		}
		if _, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fd[i]), uintptr(i), 0); err1 != 0 {
			goto childerror
		}
	}
	if s.tty {
		step = 5
		if _, _, err1 = syscall.RawSyscall(unix.SYS_IOCTL, 0, uintptr(unix.TIOCSCTTY), 1); err1 != 0 {
			goto childerror
		}
	}
	step = 6
	if _, _, err1 = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(s.dir)), 0, 0); err1 != 0 {
		goto childerror
	}

	// Capabilities: the bounding set first (CAP_SETPCAP is still
	// there), then the user, keeping the permitted set across the change
	// of user so that filters can be installed and the final sets set.
	step = 17
	if _, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); err1 != 0 {
		goto childerror
	}
	step = 7
	for i = 0; i < len(s.drop); i++ {
		if _, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, s.drop[i], 0, 0, 0, 0); err1 != 0 {
			goto childerror
		}
	}
	step = 8
	if _, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0, 0, 0, 0); err1 != 0 {
		goto childerror
	}
	step = 9
	if len(s.groups) > 0 {
		_, _, err1 = syscall.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(s.groups)), uintptr(unsafe.Pointer(&s.groups[0])), 0)
	} else {
		_, _, err1 = syscall.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0)
	}
	if err1 != 0 {
		goto childerror
	}
	step = 10
	if _, _, err1 = syscall.RawSyscall(unix.SYS_SETRESGID, s.gid, s.gid, s.gid); err1 != 0 {
		goto childerror
	}
	step = 11
	if _, _, err1 = syscall.RawSyscall(unix.SYS_SETRESUID, s.uid, s.uid, s.uid); err1 != 0 {
		goto childerror
	}
	step = 12
	if _, _, err1 = syscall.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&s.capHdr)), uintptr(unsafe.Pointer(&s.capAll[0])), 0); err1 != 0 {
		goto childerror
	}
	if s.nnp {
		step = 13
		if _, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); err1 != 0 {
			goto childerror
		}
	}
	step = 14
	for i = 0; i < len(s.filters); i++ {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&s.filters[i]))); err1 != 0 {
			goto childerror
		}
	}
	step = 15
	if _, _, err1 = syscall.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&s.capHdr)), uintptr(unsafe.Pointer(&s.capFinal[0])), 0); err1 != 0 {
		goto childerror
	}
	step = 16
	_, _, err1 = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(s.argv0)), uintptr(unsafe.Pointer(&s.argv[0])), uintptr(unsafe.Pointer(&s.envv[0])))

childerror:
	report[0], report[1] = uint32(step), uint32(err1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(s.pipe), uintptr(unsafe.Pointer(&report[0])), unsafe.Sizeof(report))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 253, 0, 0)
	}
}

// atFDCWD is AT_FDCWD (-100) as a system call argument.
const atFDCWD = ^uintptr(99)
