//go:build amd64 || arm64

package stage

import "syscall"

// canVfork says that processes of the pod may be started with vfork
// (see forkSpec.vfork).
const canVfork = true

// vforkSyscall is in vfork_$GOARCH.s. A call from this package reaches
// it directly (ABI0), with no wrapper whose frame the child would
// overwrite.
func vforkSyscall(trap, a1, a2, a3 uintptr) (r1 uintptr, err syscall.Errno)
