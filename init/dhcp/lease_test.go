package dhcp

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

func ack(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.IPv4(192, 168, 7, 20)),
		dhcpv4.WithServerIP(net.IPv4(192, 168, 7, 1)),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFromACK(t *testing.T) {
	now := time.Unix(1700000000, 0)
	mask := dhcpv4.WithNetmask(net.CIDRMask(24, 32))
	_, defaultNet, _ := net.ParseCIDR("0.0.0.0/0")
	_, tenNet, _ := net.ParseCIDR("10.1.0.0/16")
	tests := []struct {
		name string
		mods []dhcpv4.Modifier
		want Lease
	}{
		{"address and mask only: defaults of RFC 2131", []dhcpv4.Modifier{mask},
			Lease{Address: netip.MustParsePrefix("192.168.7.20/24"), Server: netip.MustParseAddr("192.168.7.1"),
				Time: time.Hour, Renew: 30 * time.Minute, Rebind: 52*time.Minute + 30*time.Second}},
		{"no mask: the address's class", nil,
			Lease{Address: netip.MustParsePrefix("192.168.7.20/24"), Server: netip.MustParseAddr("192.168.7.1"),
				Time: time.Hour, Renew: 30 * time.Minute, Rebind: 52*time.Minute + 30*time.Second}},
		{"everything", []dhcpv4.Modifier{mask,
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 168, 7, 2))),
			dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(192, 168, 7, 1), net.IPv4(192, 168, 7, 254))),
			dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(192, 168, 7, 53), net.IPv4(0, 0, 0, 0))),
			dhcpv4.WithOption(dhcpv4.OptHostName("node-7")),
			dhcpv4.WithOption(dhcpv4.OptDomainName("lab.example.")),
			dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"a.example", "b.example"}})),
			dhcpv4.WithOption(dhcpv4.OptNTPServers(net.IPv4(192, 168, 7, 123))),
			dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0xdc}),
			dhcpv4.WithLeaseTime(600),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(100 * time.Second)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(500 * time.Second)),
		}, Lease{Address: netip.MustParsePrefix("192.168.7.20/24"), Server: netip.MustParseAddr("192.168.7.2"),
			Routers: []netip.Addr{netip.MustParseAddr("192.168.7.1"), netip.MustParseAddr("192.168.7.254")},
			DNS:     []netip.Addr{netip.MustParseAddr("192.168.7.53")},
			Search:  []string{"a.example", "b.example"}, Hostname: "node-7", Domain: "lab.example",
			NTP: []netip.Addr{netip.MustParseAddr("192.168.7.123")}, MTU: 1500,
			Time: 600 * time.Second, Renew: 100 * time.Second, Rebind: 500 * time.Second}},
		{"domain name is the search list when there is none; T1 after T2 is replaced", []dhcpv4.Modifier{mask,
			dhcpv4.WithOption(dhcpv4.OptDomainName("lab.example")),
			dhcpv4.WithLeaseTime(800),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(700 * time.Second)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(600 * time.Second)),
		}, Lease{Address: netip.MustParsePrefix("192.168.7.20/24"), Server: netip.MustParseAddr("192.168.7.1"),
			Search: []string{"lab.example"}, Domain: "lab.example",
			Time: 800 * time.Second, Renew: 400 * time.Second, Rebind: 600 * time.Second}},
		{"classless routes win over routers", []dhcpv4.Modifier{mask,
			dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(192, 168, 7, 1))),
			dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
				&dhcpv4.Route{Dest: tenNet, Router: net.IPv4(192, 168, 7, 9)},
				&dhcpv4.Route{Dest: defaultNet, Router: net.IPv4(192, 168, 7, 254)},
			)),
		}, Lease{Address: netip.MustParsePrefix("192.168.7.20/24"), Server: netip.MustParseAddr("192.168.7.1"),
			Routers: []netip.Addr{netip.MustParseAddr("192.168.7.1")},
			Routes: []Route{{To: netip.MustParsePrefix("10.1.0.0/16"), Via: netip.MustParseAddr("192.168.7.9")},
				{To: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.168.7.254")}},
			Time: time.Hour, Renew: 30 * time.Minute, Rebind: 52*time.Minute + 30*time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromACK(ack(t, tt.mods...), now)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Acquired = now
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestGateway(t *testing.T) {
	gw := netip.MustParseAddr("192.168.7.1")
	other := netip.MustParseAddr("192.168.7.254")
	for _, tt := range []struct {
		name string
		l    Lease
		want netip.Addr
	}{
		{"router", Lease{Routers: []netip.Addr{gw, other}}, gw},
		{"classless default route", Lease{Routers: []netip.Addr{gw}, Routes: []Route{{To: netip.MustParsePrefix("0.0.0.0/0"), Via: other}}}, other},
		{"classless routes without a default", Lease{Routers: []netip.Addr{gw}, Routes: []Route{{To: netip.MustParsePrefix("10.0.0.0/8"), Via: other}}}, netip.Addr{}},
		{"none", Lease{}, netip.Addr{}},
	} {
		if got := tt.l.Gateway(); got != tt.want {
			t.Errorf("%s: gateway %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFromACKWithoutAddress(t *testing.T) {
	m, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	if _, err := FromACK(m, time.Now()); err == nil {
		t.Error("an ACK without an address gave a lease")
	}
}
