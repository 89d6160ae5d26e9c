package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run evaluates p on a system call as the kernel would. The x/net VM
// loads words in network order: the fields are written so.
func run(t *testing.T, p Program, arch uint32, nr uint32, arg0 uint64) uint32 {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(p))
	for i, in := range p {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[offNr:], nr)
	binary.BigEndian.PutUint32(data[offArch:], arch)
	binary.BigEndian.PutUint32(data[offArg0:], uint32(arg0))
	out, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(out)
}

const (
	allow = unix.SECCOMP_RET_ALLOW
	kill  = unix.SECCOMP_RET_KILL_PROCESS
	eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
)

func TestFilters(t *testing.T) {
	table, arch := current()
	nr := func(name string) uint32 {
		n, ok := table[name]
		if !ok {
			t.Fatalf("no system call %s", name)
		}
		return n
	}
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	remove, err := RemoveSet([]string{"chmod", "fchmodat"}, "ENOTSUP")
	if err != nil {
		t.Fatal(err)
	}
	removeKill, err := RemoveSet([]string{"getpid"}, "")
	if err != nil {
		t.Fatal(err)
	}
	retain, err := RetainSet([]string{"read", "openat"}, "")
	if err != nil {
		t.Fatal(err)
	}
	retainErrno, err := RetainSet([]string{"read"}, "EACCES")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    Program
		arch uint32
		nr   uint32
		arg0 uint64
		want uint32
	}{
		{"default allows read", def, arch, nr("read"), 0, allow},
		{"default blocks mount", def, arch, nr("mount"), 0, eperm},
		{"default blocks init_module", def, arch, nr("init_module"), 0, eperm},
		{"default blocks ptrace", def, arch, nr("ptrace"), 0, eperm},
		{"default blocks unshare", def, arch, nr("unshare"), 0, eperm},
		{"default allows fork-like clone", def, arch, nr("clone"), uint64(unix.SIGCHLD) | unix.CLONE_VM | unix.CLONE_THREAD, allow},
		{"default blocks clone of a user namespace", def, arch, nr("clone"), unix.CLONE_NEWUSER | uint64(unix.SIGCHLD), eperm},
		{"default blocks clone of a mount namespace", def, arch, nr("clone"), unix.CLONE_NEWNS, eperm},
		{"default answers ENOSYS to clone3", def, arch, nr("clone3"), 0, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{"another architecture is killed", def, 0x40000003, nr("read"), 0, kill},
		{"remove set with errno", remove, arch, nr("chmod"), 0, unix.SECCOMP_RET_ERRNO | uint32(unix.EOPNOTSUPP)},
		{"remove set keeps the default list", remove, arch, nr("mount"), 0, eperm},
		{"remove set allows the rest", remove, arch, nr("write"), 0, allow},
		{"remove set without errno kills", removeKill, arch, nr("getpid"), 0, kill},
		{"retain set allows its calls", retain, arch, nr("openat"), 0, allow},
		{"retain set allows execve", retain, arch, nr("execve"), 0, allow},
		{"retain set kills the rest", retain, arch, nr("getpid"), 0, kill},
		{"retain set with errno", retainErrno, arch, nr("getpid"), 0, unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)},
	}
	if arch == unix.AUDIT_ARCH_X86_64 {
		tests = append(tests, struct {
			name string
			p    Program
			arch uint32
			nr   uint32
			arg0 uint64
			want uint32
		}{"x32 system calls are killed", def, arch, 0x40000000 | nr("mount"), 0, kill})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(t, tt.p, tt.arch, tt.nr, tt.arg0); got != tt.want {
				t.Errorf("action %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	if _, err := RemoveSet([]string{"no_such_call"}, ""); err == nil {
		t.Error("an unknown system call is accepted")
	}
	if _, err := RemoveSet([]string{"read"}, "ENOSUCH"); err == nil {
		t.Error("an unknown errno is accepted")
	}
	if _, err := RetainSet(nil, ""); err == nil {
		t.Error("an empty set is accepted")
	}
	if _, err := RemoveSet([]string{"@other/thing"}, ""); err == nil {
		t.Error("an unknown wildcard is accepted")
	}
	p, err := RetainSet([]string{All}, "")
	if err != nil || p != nil {
		t.Errorf("retain @appc.io/all: %v %v, want no filter", p, err)
	}
	// vm86 exists on i386 only: known, not callable here, not an error.
	if _, err := RemoveSet([]string{"vm86old", "read"}, ""); err != nil {
		t.Error(err)
	}
}
