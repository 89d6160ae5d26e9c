package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/config"
	"github.com/kurmaos/kurma/init/dhcp"
)

// Defaults of the waits of Up.
const (
	// DefaultCarrierWait bounds the wait for a link's carrier before its
	// first DHCP DISCOVER (an e1000 takes about 2 s after link up).
	DefaultCarrierWait = 5 * time.Second
	// DefaultLeaseWait bounds the wait for a first lease at boot; the
	// client goes on trying in the background.
	DefaultLeaseWait = 10 * time.Second
	// dhcpMetric is the metric of routes from DHCP (plus the link's
	// index, so that each link keeps its own default route); static
	// routes have the metric the configuration gives them, 0 by default,
	// and win.
	dhcpMetric = 1024
)

// Stack configures the links of one network namespace.
type Stack struct {
	// NL is the netlink handle; nil is the current namespace.
	NL *netlink.Handle
	// DHCPConn opens the packet connection of a DHCP client on a link;
	// nil opens a raw socket (in the current namespace).
	DHCPConn func(link string) (net.PacketConn, error)
	// ResolvConf is /etc/resolv.conf unless a test says otherwise.
	ResolvConf string
	// CarrierWait and LeaseWait bound the boot's waits (the defaults
	// above when zero).
	CarrierWait, LeaseWait time.Duration
	// Hostname is sent to DHCP servers.
	Hostname string
	// OnLease is called after a lease is applied (acquired or renewed),
	// and with nil when it expires.
	OnLease func(link string, l *dhcp.Lease)
	Logf    func(format string, args ...any)
	// Debugf hears of the details: each failed DHCP attempt.
	Debugf func(format string, args ...any)

	mu    sync.Mutex
	dns   config.DNS
	links map[string]*linkState
}

// linkState is what the stack did to one link.
type linkState struct {
	name, mac string
	index     int
	entry     config.Interface
	lease     *dhcp.Lease
	err       error
	stop      context.CancelFunc // ends its DHCP client
}

func (s *Stack) nl() *netlink.Handle {
	if s.NL == nil {
		return &netlink.Handle{} // the package's own handle: this namespace
	}
	return s.NL
}

func (s *Stack) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Up brings up loopback and every link an entry of cfg matches, waiting
// (bounded) for the first DHCP leases; DHCP goes on in the background
// until ctx ends. It writes the resolver configuration. The error joins
// what failed; the links that worked are up.
func (s *Stack) Up(ctx context.Context, cfg config.Network) error {
	h := s.nl()
	s.mu.Lock()
	s.dns = cfg.DNS
	if s.links == nil {
		s.links = map[string]*linkState{}
	}
	s.mu.Unlock()
	var errs []error
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("loopback: %w", err))
	}
	links, err := s.physical()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, s.apply(ctx, links, cfg, nil)...)
	if err := s.writeResolvConf(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// apply configures each link an entry of cfg matches, at once, and
// waits for them; keep, when it says so, leaves a link as it is.
func (s *Stack) apply(ctx context.Context, links []netlink.Link, cfg config.Network, keep func(l netlink.Link, entry *config.Interface) bool) []error {
	match := Match(linkNames(links), cfg.Interfaces)
	done := make(chan error, len(links))
	started := 0
	for i, l := range links {
		a := l.Attrs()
		var entry *config.Interface
		if match[i] >= 0 {
			entry = &cfg.Interfaces[match[i]]
		}
		if keep != nil && keep(l, entry) {
			continue
		}
		if entry == nil {
			s.logf("network: %s (%s) matches no interface entry: left down", a.Name, a.HardwareAddr)
			continue
		}
		lctx, stop := context.WithCancel(ctx)
		st := &linkState{name: a.Name, mac: a.HardwareAddr.String(), index: a.Index, entry: *entry, stop: stop}
		s.mu.Lock()
		s.links[a.Name] = st
		s.mu.Unlock()
		started++
		go func() { done <- s.configure(lctx, l, st) }()
	}
	var errs []error
	for ; started > 0; started-- {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Reconfigure applies cfg to links that are up already (a datasource
// read over the network changed the configuration): a link whose entry
// changed, or that matches an entry now and did not, or no more, is
// unconfigured (its DHCP client stopped, the addresses and routes it was
// given removed; down if no entry matches it now) and configured anew;
// the others keep what they have. The DNS of cfg applies too.
func (s *Stack) Reconfigure(ctx context.Context, cfg config.Network) error {
	links, err := s.physical()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.dns = cfg.DNS
	if s.links == nil {
		s.links = map[string]*linkState{}
	}
	s.mu.Unlock()
	errs := s.apply(ctx, links, cfg, func(l netlink.Link, entry *config.Interface) bool {
		s.mu.Lock()
		st := s.links[l.Attrs().Name]
		s.mu.Unlock()
		if st == nil {
			return entry == nil // down, and to stay so
		}
		if entry != nil && reflect.DeepEqual(st.entry, *entry) {
			return true
		}
		s.logf("network: %s: its interface entry changed: configured anew", st.name)
		s.unconfigure(l, st)
		if entry == nil {
			s.logf("network: %s matches no interface entry now: down", st.name)
			_ = s.nl().LinkSetDown(l) // a link that refuses stays up, without addresses
		}
		return false
	})
	if err := s.writeResolvConf(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unconfigure undoes what configure did to a link: the DHCP client ends,
// the IPv4 addresses, the entry's static IPv6 ones and the routes the
// stack added (static and DHCP; not the kernel's or router
// advertisements') go.
func (s *Stack) unconfigure(l netlink.Link, st *linkState) {
	h := s.nl()
	if st.stop != nil {
		st.stop()
	}
	routes, _ := h.RouteList(l, netlink.FAMILY_ALL) // none listed: none to remove
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_BOOT || r.Protocol == unix.RTPROT_DHCP || r.Protocol == unix.RTPROT_STATIC {
			_ = h.RouteDel(&r) // it may have gone with an address
		}
	}
	addrs, _ := h.AddrList(l, netlink.FAMILY_V4) // as above
	for _, a := range addrs {
		_ = h.AddrDel(l, &a) // as above
	}
	for _, p := range st.entry.Addresses {
		_ = h.AddrDel(l, &netlink.Addr{IPNet: ipNet(p)}) // IPv4 ones are gone already
	}
	s.mu.Lock()
	st.lease = nil
	delete(s.links, st.name)
	s.mu.Unlock()
}

// physical lists the links other than loopback, by index.
func (s *Stack) physical() ([]netlink.Link, error) {
	all, err := s.nl().LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []netlink.Link
	for _, l := range all {
		if l.Attrs().Flags&net.FlagLoopback == 0 {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attrs().Index < out[j].Attrs().Index })
	return out, nil
}

func linkNames(links []netlink.Link) []Link {
	out := make([]Link, len(links))
	for i, l := range links {
		out[i] = Link{Name: l.Attrs().Name, MAC: l.Attrs().HardwareAddr.String()}
	}
	return out
}

// configure applies an entry to a link: MTU, up, static addresses and
// routes, then DHCP. It returns when the link is configured or the first
// lease did not come in time.
func (s *Stack) configure(ctx context.Context, l netlink.Link, st *linkState) error {
	h := s.nl()
	e := st.entry
	fail := func(err error) error {
		err = fmt.Errorf("network: %s: %w", st.name, err)
		s.mu.Lock()
		st.err = err
		s.mu.Unlock()
		return err
	}
	if e.MTU > 0 {
		if err := h.LinkSetMTU(l, e.MTU); err != nil {
			return fail(fmt.Errorf("set MTU %d: %w", e.MTU, err))
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fail(fmt.Errorf("set up: %w", err))
	}
	var errs []error
	for _, p := range e.Addresses {
		if err := h.AddrReplace(l, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
			errs = append(errs, fmt.Errorf("address %s: %w", p, err))
		}
	}
	for _, r := range e.Routes {
		rt := &netlink.Route{LinkIndex: st.index, Dst: ipNet(r.To), Priority: r.Metric}
		if r.Via.IsValid() {
			rt.Gw = net.IP(r.Via.AsSlice())
		} else {
			rt.Scope = netlink.SCOPE_LINK
		}
		if err := h.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", r.To, r.Via, err))
		}
	}
	if e.Gateway.IsValid() {
		if err := s.defaultRoute(st.index, e.Gateway, 0); err != nil {
			errs = append(errs, err)
		}
	}
	if len(e.Addresses) > 0 || e.Gateway.IsValid() {
		s.logf("network: %s: static %s", st.name, describeStatic(e))
	}
	if !e.DHCP {
		if !s.waitCarrier(ctx, st.index, s.carrierWait()) {
			s.logf("network: %s: no carrier after %s", st.name, s.carrierWait())
		}
		if len(errs) > 0 {
			return fail(errors.Join(errs...))
		}
		return nil
	}
	if err := s.startDHCP(ctx, l, st); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fail(errors.Join(errs...))
	}
	return nil
}

func describeStatic(e config.Interface) string {
	s := fmt.Sprint(e.Addresses)
	if e.Gateway.IsValid() {
		s += " gateway " + e.Gateway.String()
	}
	if len(e.Routes) > 0 {
		s += fmt.Sprintf(" and %d routes", len(e.Routes))
	}
	return s
}

// defaultRoute routes 0.0.0.0/0 (or ::/0) through gw on the link. A
// gateway outside the link's subnets (a /32 lease) gets a link route
// first.
func (s *Stack) defaultRoute(index int, gw netip.Addr, metric int) error {
	h := s.nl()
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	hostBits := 32
	if gw.Is6() {
		dst, hostBits = netip.PrefixFrom(netip.IPv6Unspecified(), 0), 128
	}
	rt := &netlink.Route{LinkIndex: index, Dst: ipNet(dst), Gw: net.IP(gw.AsSlice()), Priority: metric}
	err := h.RouteReplace(rt)
	if errors.Is(err, unix.ENETUNREACH) {
		onLink := &netlink.Route{LinkIndex: index, Dst: ipNet(netip.PrefixFrom(gw, hostBits)), Scope: netlink.SCOPE_LINK, Priority: metric}
		if err = h.RouteReplace(onLink); err == nil {
			err = h.RouteReplace(rt)
		}
	}
	if err != nil {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

func (s *Stack) carrierWait() time.Duration {
	if s.CarrierWait == 0 {
		return DefaultCarrierWait
	}
	return s.CarrierWait
}

// waitCarrier waits, at most d, for the link to have a carrier.
func (s *Stack) waitCarrier(ctx context.Context, index int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if l, err := s.nl().LinkByIndex(index); err == nil && s.carrier(l) {
			return true
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// carrier reports whether a link can send: it has a carrier
// (IFF_RUNNING) and the kernel has given it its queueing discipline.
// Until then its qdisc is "noop", which drops what is sent: a DHCP
// DISCOVER sent then is lost and resent later. (The operational state
// would be later still: the kernel's link watcher updates it at most once
// a second.)
func (s *Stack) carrier(l netlink.Link) bool {
	if l.Attrs().Flags&net.FlagRunning == 0 {
		return false
	}
	qdiscs, err := s.nl().QdiscList(l)
	if err != nil {
		return true // cannot tell: the carrier will do
	}
	for _, q := range qdiscs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT && q.Type() == "noop" {
			return false
		}
	}
	return true
}

// startDHCP gets a first lease, waiting at most LeaseWait, and keeps it
// in the background. Without a lease in time it returns an error and the
// client goes on trying.
func (s *Stack) startDHCP(ctx context.Context, l netlink.Link, st *linkState) error {
	carrierWait := s.carrierWait()
	leaseWait := s.LeaseWait
	if leaseWait == 0 {
		leaseWait = DefaultLeaseWait
	}
	start := time.Now()
	if !s.waitCarrier(ctx, st.index, carrierWait) {
		s.logf("network: %s: no carrier after %s; asking for a lease all the same", st.name, carrierWait)
	}
	carrierTook := time.Since(start)
	var conn net.PacketConn
	if s.DHCPConn != nil {
		c, err := s.DHCPConn(st.name)
		if err != nil {
			return fmt.Errorf("dhcp: %w", err)
		}
		conn = c
	}
	client, err := dhcp.NewClient(st.name, l.Attrs().HardwareAddr, conn, s.Hostname)
	if err != nil {
		return err
	}
	client.Debugf = s.Debugf
	first := make(chan error, 1)
	go func() {
		defer client.Close()
		bctx, cancel := context.WithTimeout(ctx, leaseWait)
		lease, err := client.Acquire(bctx)
		cancel()
		if err != nil {
			first <- fmt.Errorf("dhcp: no lease in %s; still asking in the background", leaseWait)
			if lease, err = client.Acquire(ctx); err != nil {
				return
			}
		}
		if ctx.Err() != nil {
			return // the link was configured anew meanwhile
		}
		applyErr := s.applyLease(st, nil, lease)
		s.logf("network: %s: dhcp lease %s, in %d ms (carrier after %d ms)", st.name, lease, time.Since(start).Milliseconds(), carrierTook.Milliseconds())
		select {
		case first <- applyErr:
		default: // the boot stopped waiting: this lease came late
		}
		client.Keep(ctx, lease, func(ev dhcp.Event) { s.leaseEvent(st, ev) })
	}()
	return <-first
}

func (s *Stack) leaseEvent(st *linkState, ev dhcp.Event) {
	switch ev.Kind {
	case dhcp.Acquired:
		s.logf("network: %s: dhcp lease %s", st.name, ev.Lease)
		if err := s.applyLease(st, nil, ev.Lease); err != nil {
			s.logf("network: %s: %v", st.name, err)
		}
	case dhcp.Renewed:
		s.logf("network: %s: dhcp lease renewed: %s", st.name, ev.Lease)
		if err := s.applyLease(st, ev.Old, ev.Lease); err != nil {
			s.logf("network: %s: %v", st.name, err)
		}
	case dhcp.Expired:
		s.logf("network: %s: dhcp lease of %s ended (%v): address removed", st.name, ev.Lease.Address, ev.Err)
		s.dropLease(st, ev.Lease)
	}
}

// applyLease puts a lease on the link: its MTU (unless the entry sets
// one), its address with the lease's lifetime, its routes, and the
// resolver configuration. old is the lease it replaces, if any.
func (s *Stack) applyLease(st *linkState, old, l *dhcp.Lease) error {
	h := s.nl()
	link, err := h.LinkByIndex(st.index)
	if err != nil {
		return fmt.Errorf("dhcp: link %s: %w", st.name, err)
	}
	var errs []error
	if st.entry.MTU == 0 && l.MTU > 0 && link.Attrs().MTU != l.MTU {
		if err := h.LinkSetMTU(link, l.MTU); err != nil {
			errs = append(errs, fmt.Errorf("MTU %d of the lease: %w", l.MTU, err))
		}
	}
	if old != nil && old.Address != l.Address {
		_ = h.AddrDel(link, &netlink.Addr{IPNet: ipNet(old.Address)}) // it may have expired already
	}
	addr := &netlink.Addr{IPNet: ipNet(l.Address)}
	if !l.Infinite() {
		// The kernel drops the address when the lease runs out, even if
		// this process could not.
		secs := int(l.Time / time.Second)
		addr.ValidLft, addr.PreferedLft = secs, secs
	}
	if err := h.AddrReplace(link, addr); err != nil {
		errs = append(errs, fmt.Errorf("address %s: %w", l.Address, err))
	}
	metric := dhcpMetric + st.index
	for _, r := range l.Routes {
		if r.To.Bits() == 0 {
			continue // the default route, below
		}
		rt := &netlink.Route{LinkIndex: st.index, Dst: ipNet(r.To), Priority: metric, Protocol: unix.RTPROT_DHCP}
		if r.Via.IsValid() {
			rt.Gw = net.IP(r.Via.AsSlice())
		} else {
			rt.Scope = netlink.SCOPE_LINK
		}
		if err := h.RouteReplace(rt); err != nil {
			errs = append(errs, fmt.Errorf("route %s of the lease: %w", r.To, err))
		}
	}
	if gw := l.Gateway(); gw.IsValid() && !st.entry.Gateway.IsValid() {
		if err := s.defaultRoute(st.index, gw, metric); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	st.lease = l
	s.mu.Unlock()
	if err := s.writeResolvConf(); err != nil {
		errs = append(errs, err)
	}
	if s.OnLease != nil {
		s.OnLease(st.name, l)
	}
	if len(errs) > 0 {
		return fmt.Errorf("dhcp: %w", errors.Join(errs...))
	}
	return nil
}

func (s *Stack) dropLease(st *linkState, l *dhcp.Lease) {
	h := s.nl()
	if link, err := h.LinkByIndex(st.index); err == nil {
		_ = h.AddrDel(link, &netlink.Addr{IPNet: ipNet(l.Address)}) // the kernel may have dropped it at its lifetime's end
	}
	s.mu.Lock()
	st.lease = nil
	s.mu.Unlock()
	if err := s.writeResolvConf(); err != nil {
		s.logf("network: %v", err)
	}
	if s.OnLease != nil {
		s.OnLease(st.name, nil)
	}
}

// Resolver is the resolver configuration in force: the configured DNS,
// then each lease's, by link name.
func (s *Stack) Resolver() ResolvConf {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r ResolvConf
	r.Add(s.dns.Servers, s.dns.Search)
	names := make([]string, 0, len(s.links))
	for n := range s.links {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if l := s.links[n].lease; l != nil {
			r.Add(l.DNS, l.Search)
		}
	}
	return r
}

// SetDNS replaces the configured DNS (a later configuration layer) and
// rewrites the resolver configuration.
func (s *Stack) SetDNS(dns config.DNS) error {
	s.mu.Lock()
	s.dns = dns
	s.mu.Unlock()
	return s.writeResolvConf()
}

func (s *Stack) writeResolvConf() error {
	path := s.ResolvConf
	if path == "" {
		path = "/etc/resolv.conf"
	}
	if err := writeFile(path, s.Resolver().Render(), 0o644); err != nil {
		return fmt.Errorf("network: write %s: %w", path, err)
	}
	return nil
}

// Leases returns the leases in force, by link name.
func (s *Stack) Leases() map[string]*dhcp.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*dhcp.Lease{}
	for n, st := range s.links {
		if st.lease != nil {
			out[n] = st.lease
		}
	}
	return out
}
