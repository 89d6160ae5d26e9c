// Package network brings up the machine's network from the
// configuration: loopback, then each link that an interface entry
// matches (by name, glob or MAC) with its MTU, static addresses, routes
// and gateway, or a DHCPv4 lease kept in the background; it writes
// /etc/resolv.conf and the proxy environment, and summarises the result
// for the console. Links are configured over netlink
// (github.com/vishvananda/netlink).
package network

import (
	"path"
	"strings"

	"github.com/kurmaos/kurma/config"
)

// Link is a network link as matching sees it.
type Link struct {
	Name string
	MAC  string // lower case with colons; "" for a link without one
}

// Matches reports whether the entry configures the link: by name or glob,
// by MAC, or by both when it gives both.
func Matches(e config.Interface, l Link) bool {
	if e.Name == "" && e.MAC == "" {
		return false
	}
	if e.Name != "" {
		if ok, err := path.Match(e.Name, l.Name); err != nil || !ok {
			return false
		}
	}
	return e.MAC == "" || strings.EqualFold(e.MAC, l.MAC)
}

// Match returns, for each link, the index of the first entry that
// matches it, or -1 when none does.
func Match(links []Link, entries []config.Interface) []int {
	out := make([]int, len(links))
	for i, l := range links {
		out[i] = -1
		for j, e := range entries {
			if Matches(e, l) {
				out[i] = j
				break
			}
		}
	}
	return out
}
