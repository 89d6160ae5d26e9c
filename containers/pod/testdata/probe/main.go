// probe reports, from inside a pod, how its process is confined: the
// privileged tests of package pod put it in their image (built static).
//
//	probe                 one "key=value" line per fact (see report)
//	probe alloc MIB       allocate and touch MIB MiB, 1 MiB at a time
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "alloc" {
		n, _ := strconv.Atoi(os.Args[2])
		var keep [][]byte
		for i := 0; i < n; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
			fmt.Println("allocated", i+1)
		}
		fmt.Println("done", len(keep))
		return
	}
	report()
}

func errno(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(syscall.Errno); ok {
		return unix.ErrnoName(e)
	}
	if pe, ok := err.(*os.PathError); ok {
		return errno(pe.Err)
	}
	return err.Error()
}

func report() {
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(l, ":")
		switch k {
		case "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters", "Uid", "Gid":
			if ok {
				fmt.Printf("%s=%s\n", k, strings.Join(strings.Fields(v), " "))
			}
		}
	}
	for _, f := range []string{"oom_score_adj", "uid_map", "gid_map"} {
		data, _ := os.ReadFile("/proc/self/" + f)
		fmt.Printf("%s=%s\n", f, strings.Join(strings.Fields(string(data)), " "))
	}
	// The control groups the pod shows its app.
	_ = filepath.Walk("/sys/fs/cgroup", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		switch filepath.Base(p) {
		case "memory.max", "memory.low", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max", "io.max",
			"memory.limit_in_bytes", "memory.soft_limit_in_bytes", "cpu.cfs_quota_us", "cpu.shares",
			"blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device":
			data, _ := os.ReadFile(p)
			fmt.Printf("cg:%s=%s\n", strings.TrimPrefix(p, "/sys/fs/cgroup/"), strings.Join(strings.Fields(string(data)), " "))
		}
		return nil
	})
	// What a default pod must not be able to do.
	_ = os.Mkdir("/tmp/probe-mnt", 0o755)
	fmt.Println("mount=" + errno(unix.Mount("none", "/tmp/probe-mnt", "tmpfs", 0, "")))
	fmt.Println("mount_cgroup=" + errno(unix.Mount("cgroup", "/tmp/probe-mnt", "cgroup", 0, "rdma")))
	fmt.Println("unshare_user=" + errno(unix.Unshare(unix.CLONE_NEWUSER)))
	fmt.Println("unshare_mnt=" + errno(unix.Unshare(unix.CLONE_NEWNS)))
	_, _, e := unix.Syscall(unix.SYS_INIT_MODULE, 0, 0, uintptr(unsafe.Pointer(&[]byte("\x00")[0])))
	fmt.Println("init_module=" + errno(errOf(e)))
	_, _, e = unix.Syscall(unix.SYS_FINIT_MODULE, 0, uintptr(unsafe.Pointer(&[]byte("\x00")[0])), 0)
	fmt.Println("finit_module=" + errno(errOf(e)))
	err := unix.PtraceAttach(1)
	if err == nil {
		// A privileged pod may. The attach stops the init: wait for the
		// stop, then detach, so that it goes on (detaching before the
		// stop fails and would leave it stopped).
		var ws unix.WaitStatus
		_, _ = unix.Wait4(1, &ws, unix.WALL, nil) // the traced init is ours to wait for
		_ = unix.PtraceDetach(1)                  // it goes on
	}
	fmt.Println("ptrace_init=" + errno(err))
	f, err := os.OpenFile("/proc/sysrq-trigger", os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write([]byte("h"))
		f.Close()
	}
	fmt.Println("sysrq=" + errno(err))
	// The init is the OOM killer's last choice; an app may not make
	// itself so.
	data, _ := os.ReadFile("/proc/1/oom_score_adj")
	fmt.Println("init_oom_score_adj=" + strings.TrimSpace(string(data)))
	fmt.Println("oom_lower=" + errno(os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)))
	exe, err := os.Open("/proc/1/exe")
	if err == nil {
		exe.Close()
	}
	fmt.Println("init_exe=" + errno(err))
	_, err = os.Readlink("/proc/1/root")
	fmt.Println("init_root=" + errno(err))
	fmt.Println("chmod=" + errno(unix.Chmod("/tmp", 0o1777)))
	fmt.Println("sethostname=" + errno(unix.Sethostname([]byte("probe"))))
	cwd, _ := os.Getwd()
	fmt.Println("cwd=" + cwd)
}

func errOf(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}
