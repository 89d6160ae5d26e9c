package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/kurmaos/kurma/config"
	"github.com/kurmaos/kurma/init/dhcp"
	"github.com/kurmaos/kurma/init/timesync"
	"github.com/kurmaos/kurma/internal/ntptest"
)

func privileged(t *testing.T, tools ...string) {
	t.Helper()
	if os.Getenv("KURMA_TEST_PRIVILEGED") != "1" || os.Getuid() != 0 {
		t.Skip("needs root and network namespaces: run as root with KURMA_TEST_PRIVILEGED=1 (make test-privileged)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/setup installs it)", tool)
		}
	}
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestDHCPWithDnsmasq runs the stack against dnsmasq: a server namespace
// and a client namespace joined by a veth pair, nothing in the host's own
// namespace. The lease's address, router, DNS, search domain and hostname
// are applied, and the lease is renewed at the T1 the server gives. The
// lease's NTP server is the one the clock asks first (an SNTP server in
// the server's namespace answers).
func TestDHCPWithDnsmasq(t *testing.T) {
	privileged(t, "ip", "dnsmasq")
	id := fmt.Sprintf("kurma-%d", os.Getpid())
	srvNS, cliNS := id+"-srv", id+"-cli"
	sh(t, "ip", "netns", "add", srvNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", srvNS).Run() }) // best effort
	sh(t, "ip", "netns", "add", cliNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", cliNS).Run() }) // best effort
	const mac = "02:00:00:00:15:01"
	sh(t, "ip", "link", "add", "vcli0", "netns", cliNS, "address", mac, "type", "veth", "peer", "name", "vsrv0", "netns", srvNS)
	sh(t, "ip", "-n", srvNS, "addr", "add", "192.168.150.1/24", "dev", "vsrv0")
	sh(t, "ip", "-n", srvNS, "link", "set", "vsrv0", "up")

	dir := t.TempDir()
	var srvLog strings.Builder
	var logMu sync.Mutex
	srv := exec.Command("ip", "netns", "exec", srvNS, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--port=0", "--user=root", "--pid-file="+filepath.Join(dir, "pid"), "--interface=vsrv0", "--bind-interfaces",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--log-dhcp", "--log-facility=-",
		"--dhcp-range=192.168.150.50,192.168.150.60,255.255.255.0,2m",
		"--dhcp-host="+mac+",192.168.150.55,client-7",
		"--dhcp-option=option:router,192.168.150.1",
		"--dhcp-option=option:dns-server,192.168.150.53",
		"--dhcp-option=option:domain-search,lab.example",
		"--dhcp-option=option:ntp-server,192.168.150.1",
		"--dhcp-option=option:T1,3",
		"--dhcp-option=option:T2,100")
	srv.Stdout = writerFunc(func(p []byte) { logMu.Lock(); srvLog.Write(p); logMu.Unlock() })
	srv.Stderr = srv.Stdout
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill() // it runs until killed
		_ = srv.Wait()         // killed: the status says so
		if t.Failed() {
			logMu.Lock()
			t.Logf("dnsmasq:\n%s", srvLog.String())
			logMu.Unlock()
		}
	})

	ns, err := netns.GetFromName(cliNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	leases := make(chan *dhcp.Lease, 8)
	s := &Stack{
		NL:         h,
		DHCPConn:   func(link string) (net.PacketConn, error) { return rawConnIn(ns, link) },
		ResolvConf: filepath.Join(dir, "resolv.conf"),
		LeaseWait:  20 * time.Second,
		OnLease:    func(_ string, l *dhcp.Lease) { leases <- l },
		Logf:       t.Logf,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	err = s.Up(ctx, config.Network{
		Interfaces: []config.Interface{{Name: "vcli*", DHCP: true}},
		DNS:        config.DNS{Servers: []netip.Addr{netip.MustParseAddr("10.0.0.53")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first lease in %s", time.Since(start))
	first := <-leases
	if first.Address.String() != "192.168.150.55/24" || first.Hostname != "client-7" || first.Gateway().String() != "192.168.150.1" || first.Renew != 3*time.Second {
		t.Errorf("lease %v", first)
	}

	link, err := h.LinkByName("vcli0")
	if err != nil {
		t.Fatal(err)
	}
	list, _ := h.AddrList(link, netlink.FAMILY_V4)
	if len(list) != 1 || list[0].IPNet.String() != "192.168.150.55/24" || list[0].ValidLft <= 0 || list[0].ValidLft > 120 {
		t.Errorf("addresses of vcli0: %v", list)
	}
	routes, _ := h.RouteList(link, netlink.FAMILY_V4)
	var gw string
	for _, r := range routes {
		if r.Gw != nil {
			gw = fmt.Sprintf("%s metric %d", r.Gw, r.Priority)
		}
	}
	if want := fmt.Sprintf("192.168.150.1 metric %d", dhcpMetric+link.Attrs().Index); gw != want {
		t.Errorf("default route %q, want %q (routes %v)", gw, want, routes)
	}
	data, _ := os.ReadFile(s.ResolvConf)
	if want := "search lab.example\nnameserver 10.0.0.53\nnameserver 192.168.150.53\n"; !strings.HasSuffix(string(data), want) {
		t.Errorf("resolv.conf:\n%s\nwant it to end with:\n%s", data, want)
	}
	clockFromLease(t, s, srvNS, cliNS)
	sum := s.Summary()
	if want := "vcli0 " + mac + " up 192.168.150.55/24 gateway 192.168.150.1 (dhcp from 192.168.150.1, lease 2m0s)"; len(sum) != 2 || sum[0] != want {
		t.Errorf("summary %q, want first line %q", sum, want)
	}

	// Renewal at T1 (3 s): the same address, a new lease.
	select {
	case l := <-leases:
		if l.Address != first.Address || !l.Acquired.After(first.Acquired) {
			t.Errorf("renewed lease %v acquired %s, first %s", l, l.Acquired, first.Acquired)
		}
		t.Logf("renewed %s after the first lease", l.Acquired.Sub(first.Acquired))
	case <-time.After(15 * time.Second):
		t.Fatal("no renewal 15 s after the first lease (T1 is 3 s)")
	}
	logMu.Lock()
	renewals := strings.Count(srvLog.String(), "DHCPACK(vsrv0) 192.168.150.55 "+mac)
	logMu.Unlock()
	if renewals < 2 {
		t.Errorf("dnsmasq acknowledged %d requests, want the first and a renewal", renewals)
	}

	// A datasource read over the network gives the link a static
	// configuration: the lease's address and routes go, the DHCP client
	// stops, the static address, route and gateway come.
	err = s.Reconfigure(ctx, config.Network{Interfaces: []config.Interface{{
		Name: "vcli*", Addresses: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24")},
		Gateway: netip.MustParseAddr("10.9.0.1"),
		Routes:  []config.Route{{To: netip.MustParsePrefix("10.77.0.0/16"), Via: netip.MustParseAddr("10.9.0.254")}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	list, _ = h.AddrList(link, netlink.FAMILY_V4)
	if len(list) != 1 || list[0].IPNet.String() != "10.9.0.2/24" {
		t.Errorf("addresses after the reconfiguration: %v, want 10.9.0.2/24 alone", list)
	}
	routes, _ = h.RouteList(link, netlink.FAMILY_V4)
	var got []string
	for _, r := range routes {
		if r.Gw != nil {
			got = append(got, fmt.Sprintf("%v via %s", r.Dst, r.Gw))
		}
	}
	if want := "[0.0.0.0/0 via 10.9.0.1 10.77.0.0/16 via 10.9.0.254]"; fmt.Sprint(got) != want {
		t.Errorf("routes after the reconfiguration: %v, want %s", got, want)
	}
	logMu.Lock()
	acks := strings.Count(srvLog.String(), "DHCPACK(vsrv0)")
	logMu.Unlock()
	time.Sleep(4 * time.Second) // past T1 (3 s): a client still running would renew
	logMu.Lock()
	after := strings.Count(srvLog.String(), "DHCPACK(vsrv0)")
	logMu.Unlock()
	if after != acks {
		t.Errorf("the DHCP client went on after the reconfiguration (%d acknowledgements, then %d)", acks, after)
	}
	// The same configuration again changes nothing.
	if err := s.Reconfigure(ctx, config.Network{Interfaces: []config.Interface{{Name: "vcli*", Addresses: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24")},
		Gateway: netip.MustParseAddr("10.9.0.1"), Routes: []config.Route{{To: netip.MustParsePrefix("10.77.0.0/16"), Via: netip.MustParseAddr("10.9.0.254")}}}}}); err != nil {
		t.Fatal(err)
	}
	if list, _ := h.AddrList(link, netlink.FAMILY_V4); len(list) != 1 {
		t.Errorf("addresses after the same configuration: %v", list)
	}
}

// clockFromLease has the clock ask the NTP servers of the stack's leases,
// as PID 1 does, from the client's namespace: the lease's server (an
// SNTP server an hour ahead, in the server's namespace) answers first.
func clockFromLease(t *testing.T, s *Stack, srvNS, cliNS string) {
	t.Helper()
	var pc net.PacketConn
	if err := inNS(srvNS, func() (err error) {
		pc, err = net.ListenPacket("udp", "192.168.150.1:123")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go ntptest.Serve(pc, time.Hour)
	var stepped time.Duration
	clock := &timesync.Syncer{
		Servers: []string{"192.0.2.1"}, // configured, never reached: the lease's answers first
		Learned: func() []string {
			var out []string
			for _, l := range s.Leases() {
				for _, a := range l.NTP {
					out = append(out, a.String())
				}
			}
			return out
		},
		Step:   func(off time.Duration) error { stepped = off; return nil },
		Slew:   func(time.Duration) error { return nil },
		Synced: func(time.Duration) error { return nil },
	}
	var r timesync.Result
	if err := inNS(cliNS, func() (err error) {
		r, err = clock.Once(context.Background())
		return err
	}); err != nil {
		t.Fatalf("clock from the lease's NTP server: %v (asked %v)", err, clock.Asked())
	}
	if r.Server != "192.168.150.1" || !r.Stepped || stepped < 59*time.Minute || stepped > 61*time.Minute {
		t.Errorf("clock: %+v stepped %s, want a step of an hour from 192.168.150.1", r, stepped)
	}
}

// rawConnIn opens the DHCP client's raw socket on a link of another
// network namespace: a socket stays in the namespace it was made in.
func rawConnIn(ns netns.NsHandle, link string) (conn net.PacketConn, err error) {
	err = inNSHandle(ns, func() error {
		conn, err = nclient4.NewRawUDPConn(link, nclient4.ClientPort)
		return err
	})
	return conn, err
}

// inNS runs f on a thread in the named network namespace.
func inNS(name string, f func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	return inNSHandle(ns, f)
}

func inNSHandle(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("cannot return to the test's network namespace: %v", err)) // the thread would stay in the wrong one
	}
	return ferr
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
