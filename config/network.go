package config

import "net/netip"

// Network configures the machine's interfaces, name resolution and the
// proxy used to retrieve images.
type Network struct {
	// Interfaces are matched against the machine's links in order; the
	// first entry that matches a link configures it.
	Interfaces []Interface `yaml:"interfaces"`
	// DNS is written to /etc/resolv.conf, before what DHCP offers.
	DNS DNS `yaml:"dns"`
	// Proxy is used for image retrieval.
	Proxy Proxy `yaml:"proxy"`
}

// PodNetwork is the pods' network, made with CNI: a bridge with an
// address of the subnet, one veth per pod, an address per pod from the
// subnet, and NAT to the outside.
type PodNetwork struct {
	// Enabled gives pods a network; off, they have loopback only.
	Enabled bool `yaml:"enabled"`
	// Subnet is where pods get their addresses; the bridge takes the
	// first one.
	Subnet netip.Prefix `yaml:"subnet"`
	// Bridge is the bridge's name.
	Bridge string `yaml:"bridge" kurma:"check=name"`
	// MTU of the bridge and the pods' links; 0 keeps the default.
	MTU int `yaml:"mtu" kurma:"check=mtu"`
	// Masquerade NATs the pods' traffic to the outside behind the
	// host's address.
	Masquerade bool `yaml:"masquerade"`
	// PluginDir holds the CNI plugins (bridge, host-local, loopback).
	PluginDir string `yaml:"plugin_dir" kurma:"check=abspath"`
}

// Interface configures the links it matches. At least one of Name and MAC
// is given; when both are, a link must match both.
type Interface struct {
	// Name is a link name ("eth0") or a glob ("en*", "eth[0-3]").
	Name string `yaml:"name" kurma:"check=glob"`
	// MAC is a hardware address, "52:54:00:12:34:56".
	MAC string `yaml:"mac" kurma:"check=mac"`
	// DHCP asks for an IPv4 lease.
	DHCP bool `yaml:"dhcp"`
	// Addresses are static addresses in CIDR notation, "10.0.0.5/24".
	Addresses []netip.Prefix `yaml:"addresses"`
	// Gateway is the default route's next hop.
	Gateway netip.Addr `yaml:"gateway"`
	// Routes are static routes through this link.
	Routes []Route `yaml:"routes"`
	// MTU of the link; 0 keeps the driver's.
	MTU int `yaml:"mtu" kurma:"check=mtu"`
}

// Route is a static route.
type Route struct {
	// To is the destination network, "10.1.0.0/16" (or "0.0.0.0/0").
	To netip.Prefix `yaml:"to"`
	// Via is the next hop; without it the route is on the link.
	Via netip.Addr `yaml:"via"`
	// Metric orders routes to the same destination; lower wins.
	Metric int `yaml:"metric"`
}

// DNS is the resolver configuration.
type DNS struct {
	// Servers are name server addresses.
	Servers []netip.Addr `yaml:"servers"`
	// Search are the search domains.
	Search []string `yaml:"search" kurma:"check=hostname"`
}

// Proxy is the HTTP proxy used to retrieve images.
type Proxy struct {
	// HTTP is the proxy for http:// URLs, "http://proxy:3128".
	HTTP string `yaml:"http" kurma:"check=proxyurl"`
	// HTTPS is the proxy for https:// URLs.
	HTTPS string `yaml:"https" kurma:"check=proxyurl"`
	// NoProxy lists hosts, domains (".example.com") and networks reached
	// directly.
	NoProxy []string `yaml:"no_proxy"`
}
