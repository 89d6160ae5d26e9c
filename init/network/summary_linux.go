package network

import (
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
)

// Summary describes the network as the kernel has it now, one line per
// link (name, MAC, state, addresses, gateway, and how it was configured)
// and one for DNS:
//
//	eth0 52:54:00:12:34:56 up 10.0.2.15/24,fec0::5054:ff:fe12:3456/64 gateway 10.0.2.2 gateway6 fe80::2 (dhcp from 10.0.2.2, lease 24h0m0s)
//
// The IPv6 addresses and gateway, when there are, are the kernel's own
// (router advertisements).
//
//	dns 10.0.2.3 search example.com
func (s *Stack) Summary() []string {
	h := s.nl()
	links, err := s.physical()
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, l := range links {
		a := l.Attrs()
		state := "down"
		switch {
		case a.Flags&net.FlagUp != 0 && a.Flags&net.FlagRunning != 0:
			state = "up"
		case a.Flags&net.FlagUp != 0:
			state = "no-carrier"
		}
		var addrs []string
		if list, err := h.AddrList(l, netlink.FAMILY_ALL); err == nil {
			for _, ad := range list {
				if ad.IP.IsLinkLocalUnicast() {
					continue
				}
				addrs = append(addrs, ad.IPNet.String())
			}
		}
		if len(addrs) == 0 {
			addrs = []string{"no-address"}
		}
		gw, gw6 := "none", ""
		if routes, err := h.RouteList(l, netlink.FAMILY_ALL); err == nil {
			for _, r := range routes {
				if r.Gw == nil || (r.Dst != nil && !isDefault(r.Dst)) {
					continue
				}
				if r.Gw.To4() != nil && gw == "none" {
					gw = r.Gw.String()
				} else if r.Gw.To4() == nil && gw6 == "" {
					gw6 = r.Gw.String()
				}
			}
		}
		line := fmt.Sprintf("%s %s %s %s gateway %s", a.Name, a.HardwareAddr, state, strings.Join(addrs, ","), gw)
		if gw6 != "" {
			line += " gateway6 " + gw6
		}
		s.mu.Lock()
		st := s.links[a.Name]
		switch {
		case st == nil:
			line += " (not configured)"
		case st.lease != nil:
			line += fmt.Sprintf(" (dhcp from %s, lease %s)", st.lease.Server, st.lease.Time)
		case st.entry.DHCP:
			line += " (dhcp, no lease)"
		default:
			line += " (static)"
		}
		s.mu.Unlock()
		out = append(out, line)
	}
	r := s.Resolver()
	dns := "none"
	if len(r.Servers) > 0 {
		dns = fmt.Sprint(r.Servers)
		dns = strings.Trim(dns, "[]")
	}
	search := "none"
	if len(r.Search) > 0 {
		search = strings.Join(r.Search, " ")
	}
	return append(out, fmt.Sprintf("dns %s search %s", dns, search))
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}
