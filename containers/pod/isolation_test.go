package pod_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/pod"
)

// lines runs one app with script and returns its log as lines.
func (e *env) lines(t *testing.T, app pod.ImageApp, opts pod.CreateOptions) []string {
	t.Helper()
	opts.Images = []pod.ImageApp{app}
	p, st := e.run(opts)
	if st.State != pod.Exited {
		t.Fatalf("status %+v", st)
	}
	return strings.Split(strings.TrimSpace(logOf(p, app.Name)), "\n")
}

func hostNS(t *testing.T, name string) string {
	l, err := os.Readlink("/proc/self/ns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNamespaces(t *testing.T) {
	e := newEnv(t)
	ns := "for n in mnt pid ipc net uts; do readlink /proc/self/ns/$n; done"
	p, st := e.run(pod.CreateOptions{Name: "nstest", Images: []pod.ImageApp{e.sh("a", ns+"; hostname; tr '\\0' ' ' < /proc/1/cmdline"), e.sh("b", ns)}})
	if st.State != pod.Exited {
		t.Fatal(st)
	}
	a := strings.Split(strings.TrimSpace(logOf(p, "a")), "\n")
	b := strings.Split(strings.TrimSpace(logOf(p, "b")), "\n")
	for i, n := range []string{"mnt", "pid", "ipc", "net", "uts"} {
		if a[i] == hostNS(t, n) {
			t.Errorf("%s namespace is the host's", n)
		}
		if shared := n != "mnt"; (a[i] == b[i]) != shared {
			t.Errorf("%s namespace: apps a %s, b %s (shared between apps: %v)", n, a[i], b[i], shared)
		}
	}
	if a[5] != "nstest" {
		t.Errorf("hostname %q, want the pod's name", a[5])
	}
	if !strings.Contains(a[6], "stage-init") {
		t.Errorf("PID 1 of the pod is %q, want the in-pod init", a[6])
	}
}

type recordingNetwork struct {
	mu              sync.Mutex
	setup, teardown []pod.NetNS
	setupInode      string
}

func (n *recordingNetwork) Setup(ctx context.Context, ns pod.NetNS) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.setup = append(n.setup, ns)
	l, err := os.Readlink(ns.Path)
	n.setupInode = l
	return err
}

func (n *recordingNetwork) Teardown(ctx context.Context, ns pod.NetNS) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.teardown = append(n.teardown, ns)
	return nil
}

func TestNetwork(t *testing.T) {
	netw := &recordingNetwork{}
	e := newEnv(t, func(o *pod.Options) { o.Network = netw })
	t.Run("own namespace with loopback", func(t *testing.T) {
		out := e.lines(t, e.sh("app", "readlink /proc/self/ns/net; ls /sys/class/net; cat /sys/class/net/lo/flags; wget -q -O - $AC_METADATA_URL/acMetadata/v1/pod/uuid; echo"), pod.CreateOptions{})
		if len(netw.setup) != 1 || netw.setupInode != out[0] {
			t.Errorf("network hook: %+v with namespace %s, the app's is %s", netw.setup, netw.setupInode, out[0])
		}
		if out[1] != "lo" || out[2] != "0x9" {
			t.Errorf("interfaces %q flags %q, want lo alone, up (0x9)", out[1], out[2])
		}
		if len(out) < 4 || len(out[3]) != 36 {
			t.Errorf("metadata service from inside the pod: %q", out)
		}
		if len(e.m.List()) != 1 {
			t.Fatal(e.m.List())
		}
		uuid := e.m.List()[0].UUID()
		if out[3] != uuid {
			t.Errorf("metadata uuid %q, want %s", out[3], uuid)
		}
		if err := e.m.Remove(context.Background(), uuid); err != nil {
			t.Fatal(err)
		}
		if len(netw.teardown) != 1 || netw.teardown[0].PodUUID != uuid {
			t.Errorf("teardown %+v", netw.teardown)
		}
	})
	t.Run("host network", func(t *testing.T) {
		val := json.RawMessage(`{"net": "host", "ipc": "host"}`)
		iso := types.Isolator{Name: pod.NamespacesIsolator, ValueRaw: &val}
		app := e.sh("app", "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; wget -q -O - $AC_METADATA_URL/acMetadata/v1/pod/uuid; echo")
		pm, err := pod.ManifestFromImages(e.store, []pod.ImageApp{app}, nil)
		if err != nil {
			t.Fatal(err)
		}
		pm.Isolators = append(pm.Isolators, iso)
		p, st := e.run(pod.CreateOptions{Manifest: pm})
		out := strings.Split(logOf(p, "app"), "\n")
		if st.State != pod.Exited || out[0] != hostNS(t, "net") {
			t.Errorf("net namespace %q (%s), want the host's", out[0], st.State)
		}
		if out[1] == hostNS(t, "ipc") {
			t.Error("the IPC namespace is the host's: it must always be new")
		}
		refused := 0
		for _, s := range st.Isolators {
			if s.Status == pod.Refused && strings.Contains(s.Message, "ipc") {
				refused++
			}
		}
		if refused != 1 {
			t.Errorf("isolators %+v, want the host's IPC namespace refused", st.Isolators)
		}
		if out[2] != p.UUID() {
			t.Errorf("metadata from a host-network pod: %q", out[2])
		}
		if len(netw.setup) != 1 {
			t.Errorf("network hook ran for a host-network pod")
		}
	})
}

func TestProcessHygiene(t *testing.T) {
	e := newEnv(t)
	t.Run("descriptors", func(t *testing.T) {
		// ls holds one more descriptor: its directory.
		app := pod.ImageApp{Image: e.busybox.ID, Name: "app", Exec: []string{"/bin/ls", "/proc/self/fd"}}
		if got := e.lines(t, app, pod.CreateOptions{}); strings.Join(got, " ") != "0 1 2 3" {
			t.Errorf("descriptors of the app: %v, want 0 1 2 (and ls's 3)", got)
		}
	})
	t.Run("orphans reaped", func(t *testing.T) {
		got := e.lines(t, e.sh("app", "( sleep 0.1 & ); ( sh -c 'sleep 0.1' & ); sleep 0.5; cat /proc/[0-9]*/status | grep -c '^State:.*Z'"), pod.CreateOptions{})
		if got[len(got)-1] != "0" {
			t.Errorf("zombies in the pod: %v", got)
		}
	})
	t.Run("proc and sys", func(t *testing.T) {
		// Paths this kernel lacks (kcore, sysrq-trigger here) read as
		// empty or fail all the same.
		script := `for f in kcore keys timer_list sched_debug; do cat /proc/$f 2>/dev/null | wc -c; done
ls -A /sys/firmware | wc -l; ls -A /proc/acpi 2>/dev/null | wc -l
echo c 2>/dev/null > /proc/sysrq-trigger && echo sysrq-written
echo x 2>/dev/null > /proc/sys/kernel/core_pattern && echo core-written
echo 1 2>/dev/null > /sys/kernel/profiling && echo sys-written
mkdir /tmp/t && mount -t tmpfs pod-private-tmpfs /tmp/t 2>/dev/null && echo mounted
mkdir /tmp/c && mount -t cgroup -o rdma cgroup /tmp/c 2>/dev/null && echo cgroup-mounted
awk '$5 ~ /^\/sys\/fs\/cgroup/ && $6 !~ /^ro/' /proc/self/mountinfo | wc -l
exit 0`
		got := e.lines(t, e.sh("app", script), pod.CreateOptions{})
		want := []string{"0", "0", "0", "0", "0", "0", "0"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("got %q, want %q", got, want)
		}
		host, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(host), "pod-private-tmpfs") {
			t.Error("a mount made in a pod shows on the host")
		}
	})
	t.Run("devices", func(t *testing.T) {
		got := e.lines(t, e.sh("app", "ls /dev | tr '\\n' ' '; echo; echo x > /dev/null && echo null-ok; readlink /dev/ptmx; stat -c %t:%T /dev/console"), pod.CreateOptions{})
		for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "console", "pts", "shm", "ptmx", "fd", "stdin", "stdout", "stderr"} {
			if !strings.Contains(" "+got[0], " "+d+" ") {
				t.Errorf("/dev lacks %s: %q", d, got[0])
			}
		}
		if strings.Join(got[1:], ",") != "null-ok,pts/ptmx,1:3" {
			t.Errorf("got %q", got[1:])
		}
	})
	t.Run("no host mounts", func(t *testing.T) {
		for _, l := range e.lines(t, e.sh("app", "cut -d' ' -f5 /proc/self/mountinfo"), pod.CreateOptions{}) {
			if strings.HasPrefix(l, e.dir) || strings.HasPrefix(l, "/work") {
				t.Errorf("host path %s is a mount point in the pod", l)
			}
		}
	})
}

// THREATS.md 14: an image with /proc, /sys or /dev as a symlink does
// not start, and nothing is mounted where the link points.
func TestSymlinkedSystemDirs(t *testing.T) {
	e := newEnv(t)
	for _, d := range []string{"proc", "dev", "sys"} {
		t.Run(d, func(t *testing.T) {
			img := e.importImage(busyboxImageWithout(t, "example.com/link-"+d, d, acitest.Symlink("rootfs/"+d, "/tmp")))
			_, err := e.m.Create(context.Background(), pod.CreateOptions{Images: []pod.ImageApp{{Image: img.ID, Name: "app"}}})
			if !errors.Is(err, pod.ErrFailed) || !strings.Contains(err.Error(), "/"+d) {
				t.Fatalf("create: %v, want ErrFailed naming /%s", err, d)
			}
		})
	}
}
