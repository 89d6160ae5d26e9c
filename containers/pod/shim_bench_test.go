package pod_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerdShims runs n containers of the bundle's root filesystem
// (/bin/sleep) through a private containerd and returns the PIDs of their
// shims (containerd-shim-runc-v2), or nil if containerd is not installed.
// Everything is stopped when the benchmark ends.
func containerdShims(b *testing.B, bundle string, n int) []int {
	if _, err := exec.LookPath("containerd"); err != nil {
		b.Logf("containerd is not installed: no shim to compare with")
		return nil
	}
	dir, err := os.MkdirTemp("", "kurma-containerd-")
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte("version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	d := exec.Command("containerd", "--config", config, "--address", sock, "--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"))
	logf, _ := os.Create(filepath.Join(dir, "log"))
	d.Stdout, d.Stderr = logf, logf
	if err := d.Start(); err != nil {
		b.Fatal(err)
	}
	ctr := func(args ...string) error {
		out, err := exec.Command("ctr", append([]string{"--address", sock, "--namespace", "kurma-bench"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ctr %s: %v %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	var ids []string
	b.Cleanup(func() {
		for _, id := range ids {
			_ = ctr("task", "kill", "-s", "KILL", id) // cleanup of a benchmark: best effort
			time.Sleep(50 * time.Millisecond)
			_ = ctr("task", "delete", id)
			_ = ctr("container", "delete", id)
		}
		_ = d.Process.Kill() // its shims exit with their tasks
		_ = d.Wait()
		for _, pid := range shimPids(sock) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // a shim left behind

		}
		os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Logf("containerd did not start: %s", readFile(filepath.Join(dir, "log")))
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range n {
		id := "bench-" + strconv.Itoa(i)
		if err := ctr("run", "-d", "--rootfs", filepath.Join(bundle, "rootfs"), id, "/bin/sleep", "1000"); err != nil {
			b.Logf("containerd: %v", err)
			return nil
		}
		ids = append(ids, id)
	}
	time.Sleep(time.Second)
	pids := shimPids(sock)
	if len(pids) == 0 {
		b.Logf("no containerd shim found")
		return nil
	}
	return pids
}

// shimPids finds the shims serving the containerd at sock.
func shimPids(sock string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(data), "\x00", " ")
		if strings.Contains(cmd, "containerd-shim") && strings.Contains(cmd, sock) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			pids = append(pids, pid)
		}
	}
	return pids
}
