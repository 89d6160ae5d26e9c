// Package seccomp builds the seccomp BPF programs that confine a pod's
// apps: Kurma's default filter, and the filters of the appc isolators
// os/linux/seccomp-remove-set and os/linux/seccomp-retain-set (ace.md).
// Programs are classic BPF, built here and installed by the in-pod init
// in each app's process between fork and exec (package stage).
//
// A program checks the architecture first (a system call of another ABI,
// i386 or x32 on amd64, kills the process: it would get past a list of
// numbers), then compares the system call number with each listed one.
package seccomp

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

//go:generate go run mksysnum.go

// Program is a seccomp filter: BPF instructions (struct sock_filter).
type Program []unix.SockFilter

// Wildcards of the appc spec.
const (
	// Empty, in a remove set, stands for no system call: only Kurma's
	// default list is blocked.
	Empty = "@appc.io/empty"
	// All, in a retain set, allows every system call: no filter.
	All = "@appc.io/all"
	// KurmaDefault, in either set, stands for the system calls of
	// Kurma's default filter (DefaultBlocked).
	KurmaDefault = "@kurma/default"
)

// DefaultBlocked are the system calls Kurma's default filter refuses
// with EPERM, for apps without a seccomp isolator and added to every
// remove set: kernel modules and keyrings, mounting and namespaces,
// tracing other processes, the clock, swap, reboot, kexec, BPF,
// io_uring, and interfaces with a history of privilege escalations
// that apps do not need. clone with a CLONE_NEW* flag is refused too,
// and clone3 answers ENOSYS (its flags cannot be inspected, and C
// libraries then fall back to clone). Capabilities already deny most of
// these to apps; the filter is the second wall.
var DefaultBlocked = []string{
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
	"get_kernel_syms", "init_module", "io_uring_enter", "io_uring_register",
	"io_uring_setup", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load",
	"keyctl", "lookup_dcookie", "mbind", "migrate_pages", "mount", "mount_setattr",
	"move_mount", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
	"open_tree", "perf_event_open", "pidfd_getfd", "pivot_root", "process_madvise",
	"process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl",
	"quotactl_fd", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday",
	"swapoff", "swapon", "syslog", "_sysctl", "umount2", "unshare", "uselib",
	"userfaultfd", "ustat", "vhangup", "vm86", "vm86old",
}

// lifecycle are the system calls a retain set always allows: those the
// runtime makes between installing the filter and the app's execve, and
// those an app needs to end.
var lifecycle = []string{"capset", "execve", "exit", "exit_group", "rt_sigreturn", "write"}

// cloneNamespaces are the CLONE_NEW* flags clone(2) may not carry.
const cloneNamespaces = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// Default is Kurma's default filter: DefaultBlocked answer EPERM. It is
// built once; callers must not change it.
func Default() (Program, error) {
	return defaultProgram()
}

var defaultProgram = sync.OnceValues(func() (Program, error) {
	return RemoveSet([]string{Empty}, "")
})

// RemoveSet is the filter of os/linux/seccomp-remove-set: the system
// calls of set, and Kurma's default list, are blocked; the listed ones
// answer errno (an errno name such as "ENOTSUP"), or kill the process
// with SIGSYS when errno is empty; the default ones answer EPERM.
func RemoveSet(set []string, errno string) (Program, error) {
	action, err := blockAction(errno)
	if err != nil {
		return nil, err
	}
	table, arch := current()
	if len(set) == 0 {
		return nil, fmt.Errorf("seccomp: the set is empty")
	}
	b := &builder{arch: arch}
	b.prologue(unix.SECCOMP_RET_KILL_PROCESS)
	seen := map[uint32]bool{}
	if !slices.Contains(set, Empty) {
		nums, err := numbers(table, set)
		if err != nil {
			return nil, err
		}
		for _, n := range nums {
			if !seen[n] {
				seen[n] = true
				b.match(n, action)
			}
		}
	}
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	for _, name := range DefaultBlocked {
		if n, ok := table[name]; ok && !seen[n] {
			seen[n] = true
			b.match(n, eperm)
		}
	}
	if n, ok := table["clone"]; ok && !seen[n] {
		b.cloneFlags(n, eperm)
	}
	if n, ok := table["clone3"]; ok && !seen[n] {
		b.match(n, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	}
	b.ret(unix.SECCOMP_RET_ALLOW)
	return b.prog, b.err()
}

// RetainSet is the filter of os/linux/seccomp-retain-set: only the
// system calls of set (and those an app's start and end need) are
// allowed; every other answers errno, or kills the process with SIGSYS
// when errno is empty. A set holding All needs no filter: RetainSet
// returns nil.
func RetainSet(set []string, errno string) (Program, error) {
	action, err := blockAction(errno)
	if err != nil {
		return nil, err
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("seccomp: the set is empty")
	}
	if slices.Contains(set, All) {
		return nil, nil
	}
	table, arch := current()
	nums, err := numbers(table, append(append([]string{}, set...), lifecycle...))
	if err != nil {
		return nil, err
	}
	b := &builder{arch: arch}
	b.prologue(action)
	seen := map[uint32]bool{}
	for _, n := range nums {
		if !seen[n] {
			seen[n] = true
			b.match(n, unix.SECCOMP_RET_ALLOW)
		}
	}
	b.ret(action)
	return b.prog, b.err()
}

// blockAction is the action of a blocked system call: its errno, or
// killing the process.
func blockAction(errno string) (uint32, error) {
	if errno == "" {
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	}
	e, ok := Errno(errno)
	if !ok {
		return 0, fmt.Errorf("seccomp: unknown errno %q", errno)
	}
	return unix.SECCOMP_RET_ERRNO | uint32(e), nil
}

// Errno returns the number of an errno name ("EPERM").
func Errno(name string) (syscall.Errno, bool) {
	for e := syscall.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == name {
			return e, true
		}
	}
	switch name { // names C libraries give to the same numbers
	case "EOPNOTSUPP":
		return unix.EOPNOTSUPP, true
	case "EWOULDBLOCK":
		return unix.EAGAIN, true
	case "EDEADLOCK":
		return unix.EDEADLK, true
	}
	return 0, false
}

// numbers resolves names in table. A name known only on another
// architecture cannot be called here and is left out; a name unknown
// everywhere is an error. KurmaDefault stands for DefaultBlocked.
func numbers(table map[string]uint32, names []string) ([]uint32, error) {
	var nums []uint32
	for _, name := range names {
		if name == KurmaDefault {
			for _, d := range DefaultBlocked {
				if n, ok := table[d]; ok {
					nums = append(nums, n)
				}
			}
			continue
		}
		if strings.HasPrefix(name, "@") {
			return nil, fmt.Errorf("seccomp: unknown wildcard %q (Kurma knows %s, %s and %s)", name, Empty, All, KurmaDefault)
		}
		if n, ok := table[name]; ok {
			nums = append(nums, n)
			continue
		}
		if !Known(name) && !slices.Contains(DefaultBlocked, name) {
			return nil, fmt.Errorf("seccomp: unknown system call %q", name)
		}
	}
	return nums, nil
}

// Known reports whether name is a Linux system call on an architecture
// Kurma knows.
func Known(name string) bool {
	_, a := syscallsAmd64[name]
	_, b := syscallsArm64[name]
	return a || b
}

func current() (map[string]uint32, uint32) {
	if runtime.GOARCH == "arm64" {
		return syscallsArm64, unix.AUDIT_ARCH_AARCH64
	}
	return syscallsAmd64, unix.AUDIT_ARCH_X86_64
}

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits of args[0] (little endian)
)

type builder struct {
	arch uint32
	prog Program
}

func (b *builder) add(code uint16, jt, jf uint8, k uint32) {
	b.prog = append(b.prog, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
}

func (b *builder) ret(action uint32) { b.add(unix.BPF_RET|unix.BPF_K, 0, 0, action) }

// prologue checks the architecture (another kills the process) and
// loads the system call number; on amd64 a number of the x32 ABI gets
// foreign.
func (b *builder) prologue(foreign uint32) {
	b.add(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, offArch)
	b.add(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 1, 0, b.arch)
	b.ret(unix.SECCOMP_RET_KILL_PROCESS)
	b.add(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, offNr)
	if b.arch == unix.AUDIT_ARCH_X86_64 {
		const x32 = 0x40000000
		b.add(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, 0, 1, x32)
		b.ret(foreign)
	}
}

// match returns action for system call nr (the accumulator holds the
// number).
func (b *builder) match(nr, action uint32) {
	b.add(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 0, 1, nr)
	b.ret(action)
}

// cloneFlags returns action for clone(2) with a CLONE_NEW* flag, and
// reloads the system call number otherwise.
func (b *builder) cloneFlags(nr, action uint32) {
	b.add(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 0, 4, nr)
	b.add(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, offArg0)
	b.add(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, 0, 1, cloneNamespaces)
	b.ret(action)
	b.add(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, offNr)
}

// maxInstructions is the kernel's limit (BPF_MAXINSNS).
const maxInstructions = 4096

func (b *builder) err() error {
	if len(b.prog) > maxInstructions {
		return fmt.Errorf("seccomp: the filter has %d instructions, more than the kernel's %d", len(b.prog), maxInstructions)
	}
	return nil
}
