//go:build !amd64 && !arm64

package stage

import "syscall"

// canVfork is false where Kurma has no vfork trampoline in assembly:
// processes of the pod are started with a plain fork there.
const canVfork = false

// vforkSyscall is not available here; forkAndExecInChild does not call
// it when canVfork is false.
func vforkSyscall(trap, a1, a2, a3 uintptr) (uintptr, syscall.Errno) { return 0, syscall.ENOSYS }
