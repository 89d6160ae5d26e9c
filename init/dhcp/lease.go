// Package dhcp is Kurma's DHCPv4 client: it gets a lease on an
// interface over a raw socket (the interface has no address yet), reads
// from it what the machine needs (address, router, classless routes, DNS,
// search domains, hostname, MTU, NTP servers, lease times) and keeps it:
// renewing at T1, rebinding at T2, starting over when it expires or the
// server refuses it. Applying a lease to the interface is the caller's
// (init/network).
//
// The protocol is github.com/insomniacslk/dhcp's nclient4.
package dhcp

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// Lease is a DHCPv4 lease as the machine uses it.
type Lease struct {
	// Address is the leased address with the subnet's prefix length.
	Address netip.Prefix
	// Server is the DHCP server that granted it.
	Server netip.Addr
	// Routers are the routers of option 3, the default gateway first.
	Routers []netip.Addr
	// Routes are the classless static routes of option 121. When there
	// are some, the routers of option 3 are not used (RFC 3442).
	Routes []Route
	DNS    []netip.Addr
	// Search is the domain search list (option 119), or the domain name
	// (option 15) when there is no list.
	Search   []string
	Hostname string
	Domain   string
	NTP      []netip.Addr
	// MTU is the interface MTU of option 26; 0 when the server did not
	// say.
	MTU int
	// Time is the lease time; Renew (T1) and Rebind (T2) are when to
	// renew it from the server that granted it and from any server,
	// counted from Acquired.
	Time, Renew, Rebind time.Duration
	Acquired            time.Time

	raw *nclient4.Lease
}

// Route is a classless static route: To through Via, or on the link when
// Via is unspecified.
type Route struct {
	To  netip.Prefix
	Via netip.Addr
}

// DefaultLeaseTime is used when the server gives no lease time.
const DefaultLeaseTime = time.Hour

// infinite is the lease time 0xffffffff: a lease that never expires.
const infinite = time.Duration(0xffffffff) * time.Second

// Gateway is the default route's next hop: from a 0.0.0.0/0 classless
// route when there are classless routes, from option 3 otherwise; the
// zero Addr when the lease has none.
func (l *Lease) Gateway() netip.Addr {
	if len(l.Routes) > 0 {
		for _, r := range l.Routes {
			if r.To.Bits() == 0 {
				return r.Via
			}
		}
		return netip.Addr{}
	}
	if len(l.Routers) > 0 {
		return l.Routers[0]
	}
	return netip.Addr{}
}

// Infinite reports whether the lease never expires.
func (l *Lease) Infinite() bool { return l.Time >= infinite }

// Expires is when the lease ends; the zero Time for an infinite lease.
func (l *Lease) Expires() time.Time {
	if l.Infinite() {
		return time.Time{}
	}
	return l.Acquired.Add(l.Time)
}

func (l *Lease) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s from %s", l.Address, l.Server)
	if g := l.Gateway(); g.IsValid() {
		fmt.Fprintf(&b, ", gateway %s", g)
	}
	if len(l.DNS) > 0 {
		fmt.Fprintf(&b, ", dns %s", joinAddrs(l.DNS))
	}
	if l.Hostname != "" {
		fmt.Fprintf(&b, ", hostname %s", l.Hostname)
	}
	if l.Infinite() {
		b.WriteString(", forever")
	} else {
		fmt.Fprintf(&b, ", for %s (renew after %s)", l.Time, l.Renew)
	}
	return b.String()
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// FromACK reads a lease from the server's ACK, acquired at the given
// time. An ACK without an address or a subnet mask is an error.
func FromACK(ack *dhcpv4.DHCPv4, acquired time.Time) (*Lease, error) {
	ip, ok := addr4(ack.YourIPAddr)
	if !ok || ip.IsUnspecified() {
		return nil, fmt.Errorf("the server's ACK has no address")
	}
	bits := 0
	if mask := ack.SubnetMask(); mask != nil {
		ones, size := mask.Size()
		if size != 32 {
			return nil, fmt.Errorf("the server's ACK has a bad subnet mask %v", mask)
		}
		bits = ones
	} else {
		bits = classfulBits(ip)
	}
	l := &Lease{
		Address:  netip.PrefixFrom(ip, bits),
		Routers:  addrs4(ack.Router()),
		DNS:      addrs4(ack.DNS()),
		Hostname: strings.TrimSuffix(ack.HostName(), "."),
		Domain:   strings.TrimSuffix(ack.DomainName(), "."),
		NTP:      addrs4(ack.NTPServers()),
		Acquired: acquired,
	}
	l.Server, _ = addr4(ack.ServerIdentifier())
	if !l.Server.IsValid() {
		l.Server, _ = addr4(ack.ServerIPAddr)
	}
	for _, r := range ack.ClasslessStaticRoute() {
		to, ok := prefix4(r.Dest)
		if !ok {
			continue
		}
		via, _ := addr4(r.Router)
		if via.IsUnspecified() {
			via = netip.Addr{}
		}
		l.Routes = append(l.Routes, Route{To: to, Via: via})
	}
	if labels := ack.DomainSearch(); labels != nil {
		for _, s := range labels.Labels {
			l.Search = append(l.Search, strings.TrimSuffix(s, "."))
		}
	}
	if len(l.Search) == 0 && l.Domain != "" {
		l.Search = []string{l.Domain}
	}
	if b := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(b) == 2 {
		if mtu := int(b[0])<<8 | int(b[1]); mtu >= 68 {
			l.MTU = mtu
		}
	}
	l.Time = ack.IPAddressLeaseTime(DefaultLeaseTime)
	if l.Time <= 0 {
		l.Time = DefaultLeaseTime
	}
	// RFC 2131 4.4.5: T1 defaults to half the lease, T2 to 7/8 of it;
	// times the server gives out of order are replaced by the defaults.
	l.Renew = ack.IPAddressRenewalTime(l.Time / 2)
	l.Rebind = ack.IPAddressRebindingTime(l.Time * 7 / 8)
	if l.Rebind <= 0 || l.Rebind > l.Time {
		l.Rebind = l.Time * 7 / 8
	}
	if l.Renew <= 0 || l.Renew > l.Rebind {
		l.Renew = min(l.Time/2, l.Rebind)
	}
	return l, nil
}

func addr4(ip net.IP) (netip.Addr, bool) {
	ip4 := ip.To4()
	if ip4 == nil {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(ip4)), true
}

func addrs4(ips []net.IP) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		if a, ok := addr4(ip); ok && !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	return out
}

func prefix4(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := addr4(n.IP)
	ones, size := n.Mask.Size()
	if !ok || size != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

// classfulBits is the prefix length of an address's class, for a server
// that sends no subnet mask.
func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	}
	return 24
}
