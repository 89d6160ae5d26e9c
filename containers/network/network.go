// Package network gives pods their own network with CNI
// (github.com/containernetworking/cni) and the standard plugins: a bridge
// on the host with the subnet's first address, a veth pair per pod, an
// address per pod from host-local IPAM, a default route through the
// bridge, and NAT to the outside. It plugs into the pod manager as its
// pod.Network; pods on the host's network skip it.
package network

import (
	"context"
	"encoding/json"

	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/kurmaos/kurma/containers/pod"
)

// Options describe the pods' network.
type Options struct {
	// PluginDir holds the CNI plugins: bridge, host-local, loopback.
	PluginDir string
	// Bridge is the bridge's name (at most 15 bytes).
	Bridge string
	// Subnet is where pods get addresses; the bridge takes the first.
	Subnet netip.Prefix
	// MTU of the bridge and the pods' links; 0 is the default.
	MTU int
	// Masquerade NATs the pods' traffic behind the host's address.
	Masquerade bool
	// StateDir holds the IPAM's leases and libcni's cache (a tmpfs:
	// /run/kurma/cni).
	StateDir string
	// IfName is the pods' link name (eth0).
	IfName string
}

// CNI is the pods' network.
type CNI struct {
	opts Options
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList

	mu    sync.Mutex
	addrs map[string][]string // pod UUID -> its addresses
}

// New checks the options and the plugins and makes the network's
// configuration; nothing is set up until the first pod.
func New(opts Options) (*CNI, error) {
	if opts.IfName == "" {
		opts.IfName = "eth0"
	}
	if l := len(opts.Bridge); l == 0 || l > 15 {
		return nil, fmt.Errorf("pod network: bridge name %q: 1 to 15 bytes", opts.Bridge)
	}
	if !opts.Subnet.IsValid() || !opts.Subnet.Addr().Is4() || opts.Subnet.Bits() > 30 {
		return nil, fmt.Errorf("pod network: subnet %v: an IPv4 network of at least 4 addresses", opts.Subnet)
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(opts.PluginDir, plugin)); err != nil {
			return nil, fmt.Errorf("pod network: CNI plugin %s: %w", plugin, err)
		}
	}
	conf, err := json.Marshal(confList(opts))
	if err != nil {
		return nil, err
	}
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	return &CNI{
		opts:  opts,
		cni:   libcni.NewCNIConfigWithCacheDir([]string{opts.PluginDir}, filepath.Join(opts.StateDir, "cache"), nil),
		list:  list,
		addrs: map[string][]string{},
	}, nil
}

// confList is the CNI configuration of the network.
func confList(o Options) map[string]any {
	bridge := map[string]any{
		"type":        "bridge",
		"bridge":      o.Bridge,
		"isGateway":   true,
		"ipMasq":      o.Masquerade,
		"hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": o.Subnet.Masked().String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": filepath.Join(o.StateDir, "ipam"),
		},
	}
	if o.MTU > 0 {
		bridge["mtu"] = o.MTU
	}
	return map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kurma",
		"plugins":    []any{bridge},
	}
}

func (c *CNI) runtimeConf(n pod.NetNS) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: n.PodUUID, NetNS: n.Path, IfName: c.opts.IfName}
}

// Setup connects the pod's network namespace to the bridge.
func (c *CNI) Setup(ctx context.Context, n pod.NetNS) error {
	res, err := c.cni.AddNetworkList(ctx, c.list, c.runtimeConf(n))
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("pod network: result: %w", err)
	}
	var addrs []string
	for _, ip := range r.IPs {
		addrs = append(addrs, ip.Address.String())
	}
	c.mu.Lock()
	c.addrs[n.PodUUID] = addrs
	c.mu.Unlock()
	return nil
}

// Teardown disconnects the pod and gives its address back. The pod's
// namespace may be gone: the plugins then release what is on the host.
func (c *CNI) Teardown(ctx context.Context, n pod.NetNS) error {
	c.mu.Lock()
	delete(c.addrs, n.PodUUID)
	c.mu.Unlock()
	if err := c.cni.DelNetworkList(ctx, c.list, c.runtimeConf(n)); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	return nil
}

// Addresses returns the pod's addresses (CIDR), from memory or, after a
// restart of the daemon, from libcni's cache.
func (c *CNI) Addresses(uuid string) []string {
	c.mu.Lock()
	addrs, ok := c.addrs[uuid]
	c.mu.Unlock()
	if ok {
		return addrs
	}
	res, err := c.cni.GetNetworkListCachedResult(c.list, &libcni.RuntimeConf{ContainerID: uuid, IfName: c.opts.IfName})
	if err != nil || res == nil {
		return nil
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil
	}
	for _, ip := range r.IPs {
		addrs = append(addrs, ip.Address.String())
	}
	c.mu.Lock()
	c.addrs[uuid] = addrs
	c.mu.Unlock()
	return addrs
}
