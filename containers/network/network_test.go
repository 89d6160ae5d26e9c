package network_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/containers/network"
	"github.com/kurmaos/kurma/containers/pod"
)

func TestNewChecksOptions(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		os.WriteFile(filepath.Join(dir, p), nil, 0o755)
	}
	good := network.Options{PluginDir: dir, Bridge: "kurma0", Subnet: netip.MustParsePrefix("10.88.0.0/16"), StateDir: t.TempDir()}
	if _, err := network.New(good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for name, change := range map[string]func(*network.Options){
		"long bridge name": func(o *network.Options) { o.Bridge = "a-bridge-name-too-long" },
		"tiny subnet":      func(o *network.Options) { o.Subnet = netip.MustParsePrefix("10.0.0.0/31") },
		"IPv6 subnet":      func(o *network.Options) { o.Subnet = netip.MustParsePrefix("fd00::/64") },
		"no plugins":       func(o *network.Options) { o.PluginDir = t.TempDir() },
	} {
		o := good
		change(&o)
		if _, err := network.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestPodNetwork runs a real pod on a real bridge with Debian's CNI
// plugins: the pod gets an address of the subnet on eth0, a default route
// through the bridge, and reaches the bridge's address; removing the pod
// gives its address back and removes its veth.
func TestPodNetwork(t *testing.T) {
	if os.Geteuid() != 0 || os.Getenv("KURMA_TEST_PRIVILEGED") != "1" {
		t.Skip("needs root: run with KURMA_TEST_PRIVILEGED=1 as root (make test-privileged)")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skipf("Debian's containernetworking-plugins is needed (scripts/setup installs it): %v", err)
	}
	suffix := randomHex(t, 3)
	bridge := "kt" + suffix
	octet := int(suffix[0])%200 + 20
	subnet := netip.MustParsePrefix(fmt.Sprintf("10.%d.77.0/24", octet))
	gateway := subnet.Addr().Next()
	dir := t.TempDir()
	cni, err := network.New(network.Options{PluginDir: "/usr/lib/cni", Bridge: bridge, Subnet: subnet, Masquerade: true, StateDir: filepath.Join(dir, "cni")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })

	stage := filepath.Join(dir, "kurma-stage")
	if out, err := exec.Command("go", "build", "-o", stage, "../../cmd/kurma-stage").CombinedOutput(); err != nil {
		t.Fatalf("go build kurma-stage: %v\n%s", err, out)
	}
	store, err := image.Open(filepath.Join(dir, "images"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bb, err := acitest.Busybox("example.com/busybox", nil, "")
	if err != nil {
		t.Skipf("busybox-static is needed: %v", err)
	}
	img, err := store.Import(context.Background(), bytes.NewReader(bb), image.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	os.Mkdir(run, 0o700)
	if err := unix.Mount("tmpfs", run, "tmpfs", 0, "mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(run, unix.MNT_DETACH) })
	m, err := pod.Open(context.Background(), pod.Options{Dir: filepath.Join(dir, "pods"), RunDir: filepath.Join(run, "pods"),
		Images: store, StageBinary: stage, Network: cni, Spares: -1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script := fmt.Sprintf("ip -4 addr show eth0; ip route; ping -c 1 -W 3 %s && echo GATEWAY-REACHED", gateway)
	p, err := m.Create(ctx, pod.CreateOptions{Images: []pod.ImageApp{{Image: img.ID, Name: "net", Exec: []string{"/bin/sh", "-c", script}}}})
	if err != nil {
		t.Fatal(err)
	}
	addrs := cni.Addresses(p.UUID())
	if len(addrs) != 1 || !subnet.Contains(netip.MustParsePrefix(addrs[0]).Addr()) {
		t.Errorf("addresses %v, want one of %v", addrs, subnet)
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	logs, _ := os.ReadFile(p.LogPath("net"))
	out := string(logs)
	for _, want := range []string{"inet " + strings.Split(addrs[0], "/")[0], "default via " + gateway.String(), "GATEWAY-REACHED"} {
		if !strings.Contains(out, want) {
			t.Errorf("the pod's output lacks %q:\n%s", want, out)
		}
	}
	leases, _ := filepath.Glob(filepath.Join(dir, "cni", "ipam", "kurma", "10.*"))
	if len(leases) != 1 {
		t.Errorf("IPAM leases while the pod exists: %v", leases)
	}
	if err := m.Remove(ctx, p.UUID()); err != nil {
		t.Fatal(err)
	}
	leases, _ = filepath.Glob(filepath.Join(dir, "cni", "ipam", "kurma", "10.*"))
	if len(leases) != 0 {
		t.Errorf("IPAM leases left after remove: %v", leases)
	}
	// The kernel destroys a network namespace (and the veth end in it)
	// asynchronously, once its last user is gone.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ := exec.Command("ip", "-o", "link", "show", "master", bridge).Output()
		if strings.TrimSpace(string(out)) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("links still on the bridge 10 s after remove:\n%s", out)
			break
		}
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
