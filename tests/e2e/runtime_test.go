package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/apiserver"
	"github.com/kurmaos/kurma/tests/qemu"
)

// kurmaCLI runs the kurma command on the host against the machine's
// remote API as role ("admin" or "reader"); it returns the output and
// the exit status.
type kurmaCLI func(role string, args ...string) (string, int)

// bootWithRemoteAPI boots with the remote API on (its certificates added
// to the initramfs, with opts's files) and returns the machine, ready,
// and the kurma command driving it from the host through a forwarded
// port over mutual TLS; must runs it as admin and fails the test on a
// non-zero exit.
func bootWithRemoteAPI(t *testing.T, opts qemu.Options) (vm *qemu.VM, cli kurmaCLI, must func(args ...string) string) {
	t.Helper()
	qemu.Skip(t)
	kurma := filepath.Join(qemu.ImageDir(), "..", "bin", "kurma")
	if _, err := os.Stat(kurma); err != nil {
		t.Fatalf("the kurma command: %v (make image builds it)", err)
	}
	certs := t.TempDir()
	if err := apiserver.WriteSetup(certs, []string{"127.0.0.1", "localhost"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for k, v := range opts.InitrdFiles {
		files[k] = v
	}
	for _, f := range []string{"server.pem", "server-key.pem", "ca.pem"} {
		data, err := os.ReadFile(filepath.Join(certs, f))
		if err != nil {
			t.Fatal(err)
		}
		files["/etc/kurma/certs/"+f] = data
	}
	opts.InitrdFiles = files
	opts.HostFwd = append(opts.HostFwd, 4443)
	opts.Append = append(opts.Append,
		"kurma.api.remote.address=:4443",
		"kurma.api.remote.tls.cert=/etc/kurma/certs/server.pem",
		"kurma.api.remote.tls.key=/etc/kurma/certs/server-key.pem",
		"kurma.api.remote.tls.ca=/etc/kurma/certs/ca.pem",
	)
	vm = qemu.Start(t, opts)
	vm.Expect(t, `kurma: runtime: images: 1 imported from /usr/share/kurma/images`, bootTimeout)
	vm.Expect(t, `kurma:   runtime +\d+ ms\r?\n`, time.Minute)
	vm.Expect(t, `kurma: ready`, time.Minute)
	// The daemon's own line is relayed by PID 1 as it comes: around ready.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(vm.Console(), "daemon ready: API on /run/kurma/kurma.sock and [::]:4443"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not say it serves the socket and the remote listener")
		}
	}
	cli = func(role string, args ...string) (string, int) {
		t.Helper()
		full := append([]string{"-H", fmt.Sprintf("127.0.0.1:%d", vm.HostPort(4443)),
			"--cert", filepath.Join(certs, role+".pem"), "--key", filepath.Join(certs, role+"-key.pem"),
			"--ca", filepath.Join(certs, "ca.pem")}, args...)
		var out bytes.Buffer
		cmd := exec.Command(kurma, full...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("kurma %v: %v", args, err)
		}
		return out.String(), 0
	}
	must = func(args ...string) string {
		t.Helper()
		out, code := cli("admin", args...)
		if code != 0 {
			t.Fatalf("kurma %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	return vm, cli, must
}

// TestRuntimeOverRemoteAPI boots with the remote API on (its certificates
// added to the initramfs), and drives the machine from the host with the
// kurma command through a forwarded port over mutual TLS: it runs a pod
// from the busybox image the initrd ships, lists it, enters it, checks
// that a reader may not stop it, stops and removes it, reads info, and
// runs a pod in a user namespace on the OS's own kernel, and powers the
// machine off through the API.
func TestRuntimeOverRemoteAPI(t *testing.T) {
	vm, cli, must := bootWithRemoteAPI(t, qemu.Options{})
	uuid := strings.TrimSpace(must("run", "--name", "web", "kurma/busybox", "--", "/bin/sh", "-c", "echo started; exec sleep 600"))
	if len(uuid) != 36 {
		t.Fatalf("run printed %q, want the pod's UUID", uuid)
	}
	if out := must("list"); !strings.Contains(out, "web") || !strings.Contains(out, "running") {
		t.Errorf("list:\n%s", out)
	}
	out, code := cli("admin", "enter", "web", "--", "/bin/sh", "-c", "echo hello from $AC_APP_NAME in $(hostname); exit 3")
	if code != 3 || !strings.Contains(out, "hello from busybox") {
		t.Errorf("enter: exit %d\n%s", code, out)
	}
	// The pod's init is never the OOM killer's choice (the memory hog
	// below must lose, not the init that reports its exit); the apps
	// have the default and may not lower it.
	out, _ = cli("admin", "enter", "web", "--", "/bin/sh", "-c",
		"echo init=$(cat /proc/1/oom_score_adj) app=$(cat /proc/self/oom_score_adj); echo -1000 > /proc/self/oom_score_adj && echo lowered")
	if !strings.Contains(out, "init=-1000 app=0") || strings.Contains(out, "lowered") {
		t.Errorf("oom_score_adj in a pod:\n%s", out)
	}
	// The pod has its own network: an address on the pods' bridge, which
	// it reaches.
	if out := must("show", "web"); !regexp.MustCompile(`Addresses:\s+10\.88\.\d+\.\d+/16`).MatchString(out) {
		t.Errorf("show: no address of the pods' network:\n%s", out)
	}
	if out, code := cli("admin", "enter", "web", "--", "/bin/sh", "-c", "ip -4 addr show eth0 && ping -c 1 -W 5 10.88.0.1"); code != 0 || !strings.Contains(out, "1 packets received") {
		t.Errorf("the pod does not reach its gateway: exit %d\n%s", code, out)
	}
	// An interactive app over the remote API: its terminal's output from
	// its start, the end of the (empty) input, its exit status.
	if out, code := cli("admin", "run", "--interactive", "kurma/busybox", "--", "/bin/sh", "-c", "echo on-a-terminal $(tty); read x || echo input-ended; exit 5"); code != 5 ||
		!regexp.MustCompile(`on-a-terminal /dev/pts/\d+\ninput-ended\n`).MatchString(out) {
		t.Errorf("run --interactive: exit %d\n%q", code, out)
	}
	if out := must("logs", "web"); !strings.Contains(out, "started") {
		t.Errorf("logs: %q", out)
	}
	if out, code := cli("reader", "stop", "web"); code == 0 || !strings.Contains(out, "permission_denied") {
		t.Errorf("a reader stopped the pod: exit %d\n%s", code, out)
	}
	if out, _ := cli("reader", "list"); !strings.Contains(out, "web") {
		t.Errorf("reader list:\n%s", out)
	}
	must("stop", "web")
	must("rm", "web")
	if out := must("list"); strings.Contains(out, "web") {
		t.Errorf("web is listed after rm:\n%s", out)
	}
	// Resource isolators on the OS's pure cgroup v2 (the build machine's
	// cgroups are a hybrid): a memory hog is killed by the OOM killer and
	// its status says so; a pod limited to 10 processes cannot start 30.
	hog, code := cli("admin", "run", "--wait", "--isolator", `resource/memory={"limit":"32Mi"}`, "kurma/busybox", "--",
		"/bin/sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived")
	if code != 137 || strings.Contains(hog, "survived") {
		t.Errorf("the memory hog under 32 MiB: exit %d, want 137 (SIGKILL)\n%s", code, hog)
	}
	out, _ = cli("admin", "--json", "list")
	if !regexp.MustCompile(`"oom_killed":\s*true`).MatchString(out) {
		t.Errorf("no pod says an app was OOM killed:\n%s", out)
	}
	out, _ = cli("admin", "run", "--wait", "--isolator", "os/linux/pids-limit=10", "kurma/busybox", "--",
		"/bin/sh", "-c", "i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done; echo all started")
	if strings.Contains(out, "all started") || !strings.Contains(out, "fork") {
		t.Errorf("30 processes under a limit of 10:\n%s", out)
	}
	// The limit is the apps': the pod's init (5 to 8 threads) is not
	// counted, and 6 processes run under a limit of 8.
	out, code = cli("admin", "run", "--wait", "--isolator", "os/linux/pids-limit=8", "kurma/busybox", "--",
		"/bin/sh", "-c", "for i in 1 2 3 4 5; do sleep 1 & done; wait; echo five ran")
	if code != 0 || !strings.Contains(out, "five ran") {
		t.Errorf("6 processes under a limit of 8: exit %d\n%s", code, out)
	}
	// A pod in a user namespace on the OS's kernel (Debian's 6.1): root
	// inside, the pool's first ID on the host. The image store is on the
	// OS's tmpfs, which 6.1 cannot ID-map: the pod runs on a copy of its
	// image owned by its IDs, and says so.
	out, code = cli("admin", "run", "--wait", "--name", "userns", "--isolator", `os/linux/namespaces={"user":"child"}`, "kurma/busybox", "--",
		"/bin/sh", "-c", "id -u; cat /proc/self/uid_map; echo x > /written && echo rootfs-written")
	if code != 0 || !regexp.MustCompile(`(?m)^0\n\s+0\s+268435456\s+65536\n`).MatchString(out) || !strings.Contains(out, "rootfs-written") {
		t.Errorf("a pod in a user namespace: exit %d\n%s", code, out)
	}
	if out := must("show", "userns"); !strings.Contains(out, "IDs 0-65535 are 268435456-268500991 on the host") || !strings.Contains(out, "copies of the images") {
		t.Errorf("show: the user namespace's isolator status:\n%s", out)
	}
	must("rm", "userns")
	info := must("info")
	for _, want := range []string{`\(Kurma OS\)`, `Images:\s+1\n`, `runtime\s+\d+ ms`, `\d+ ms from kernel start to ready`} {
		if !regexp.MustCompile(want).MatchString(info) {
			t.Errorf("info lacks %q:\n%s", want, info)
		}
	}
	must("poweroff")
	vm.Expect(t, `kurma: SIGRTMIN\+4 received`, time.Minute)
	vm.Expect(t, `reboot: Power down`, time.Minute)
	vm.WaitExit(t, time.Minute)
}

// TestUserNamespaceOnDisk boots with a data disk for the images and the
// pods (ext4, formatted at boot) and runs a pod in a user namespace: on
// the OS's kernel (Debian's 6.1) its root filesystem is the store's
// layers, ID-mapped, under overlayfs; root inside writes it, and the
// files it writes belong to the pod's IDs on the disk.
func TestUserNamespaceOnDisk(t *testing.T) {
	dir := t.TempDir()
	data := sizedFile(t, filepath.Join(dir, "data.img"), 256<<20)
	config := "images:\n  offline_dirs: [/usr/share/kurma/images]\n" +
		"disks:\n  - path: /dev/vda\n    format: if-blank\n    usages: [images, pods]\n"
	vm, _, must := bootWithRemoteAPI(t, qemu.Options{Disks: []qemu.Disk{{Path: data}}, InitrdFiles: map[string][]byte{"/etc/kurma/config.yaml": []byte(config)}})
	out := must("run", "--wait", "--name", "userns", "--isolator", `os/linux/namespaces={"user":"child"}`, "kurma/busybox", "--",
		"/bin/sh", "-c", "id -u; stat -c %u:%g /bin/busybox; echo x > /written && stat -c %u /written")
	if !regexp.MustCompile(`(?m)^0\n0:0\n0$`).MatchString(out) {
		t.Errorf("a pod in a user namespace: %q, want root inside owning its image's files and the one it writes", out)
	}
	shown := must("show", "userns")
	if !strings.Contains(shown, "root filesystems: the images' layers, ID-mapped") {
		t.Errorf("show: the pod runs on copies, not ID-mapped layers:\n%s", shown)
	}
	uuid := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).FindString(shown)
	if uuid == "" {
		t.Fatalf("show names no UUID:\n%s", shown)
	}
	must("poweroff")
	vm.WaitExit(t, time.Minute)
	// On the disk, the pod's writable layer belongs to its first ID; the
	// image's files stay the host's root's.
	if got := debugfs(t, data, "stat /pods/"+uuid+"/busybox.upper/written"); !regexp.MustCompile(`User:\s+268435456\s`).MatchString(got) {
		t.Errorf("the file the pod wrote, on the disk:\n%s\nthe pod's directory:\n%s", got, debugfs(t, data, "ls -l /pods/"+uuid))
	}
}
