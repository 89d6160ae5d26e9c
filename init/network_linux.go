package boot

import (
	"context"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/kurmaos/kurma/init/dhcp"
	"github.com/kurmaos/kurma/init/network"
	"github.com/kurmaos/kurma/init/timesync"
)

// timeWait bounds the boot's wait for the first NTP answer; the client
// goes on in the background.
const timeWait = 3 * time.Second

// network brings up loopback and the configured links, writes
// /etc/resolv.conf and the proxy environment. DHCP leases are kept in the
// background for the life of the machine.
func (m *Machine) network(ctx context.Context) error {
	m.net = &network.Stack{
		ResolvConf: "/etc/resolv.conf",
		Hostname:   m.cfg.Hostname,
		OnLease:    m.onLease,
		Logf:       m.log.Infof,
		Debugf:     m.log.Debugf,
	}
	err := m.net.Up(ctx, m.cfg.Network)
	if perr := network.ApplyProxy(network.ProxyEnv, m.cfg.Network.Proxy); perr != nil {
		m.log.Errorf("%v", perr)
	} else if p := m.cfg.Network.Proxy; p.HTTP != "" || p.HTTPS != "" {
		m.log.Infof("network: proxy http %q https %q for image retrieval (%s)", p.HTTP, p.HTTPS, network.ProxyEnv)
	}
	m.debugResolvConf()
	return err
}

// onLease takes the hostname of a lease; it runs on the DHCP client's
// goroutine.
func (m *Machine) onLease(_ string, l *dhcp.Lease) {
	if l == nil || l.Hostname == "" {
		return
	}
	m.hostMu.Lock()
	changed := m.dhcpHostname != l.Hostname
	m.dhcpHostname = l.Hostname
	m.hostMu.Unlock()
	if changed {
		if err := m.applyHostname(); err != nil {
			m.log.Warnf("%v", err)
		}
	}
}

func (m *Machine) debugResolvConf() {
	if !m.log.debugOn() {
		return
	}
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		m.log.Debugf("resolv.conf: %v", err)
		return
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		m.log.Debugf("resolv.conf: %s", l)
	}
}

// networkDatasources runs the datasources that need the network (the
// config URL), then applies what they changed of the host: hostname,
// sysctls, DNS, proxy.
func (m *Machine) networkDatasources(ctx context.Context) error {
	results := m.cfgLoader.RunDatasources(ctx, nil)
	if len(results) == 0 {
		m.log.Debugf("config: no network datasource enabled")
		return nil
	}
	for _, r := range results {
		m.log.Infof("config: %s", r)
	}
	before := *m.cfg
	err := m.applyConfig()
	if herr := m.host(ctx); herr != nil {
		m.log.Errorf("%v", herr)
	}
	if m.net != nil && !reflect.DeepEqual(before.Network.DNS, m.cfg.Network.DNS) {
		if derr := m.net.SetDNS(m.cfg.Network.DNS); derr != nil {
			m.log.Errorf("%v", derr)
		}
		m.debugResolvConf()
	}
	if !reflect.DeepEqual(before.Network.Proxy, m.cfg.Network.Proxy) {
		if perr := network.ApplyProxy(network.ProxyEnv, m.cfg.Network.Proxy); perr != nil {
			m.log.Errorf("%v", perr)
		}
	}
	if m.net != nil && !reflect.DeepEqual(before.Network.Interfaces, m.cfg.Network.Interfaces) {
		m.log.Infof("config: a datasource changed network.interfaces: the links it changes are configured anew")
		if nerr := m.net.Reconfigure(ctx, m.cfg.Network); nerr != nil {
			m.log.Errorf("%v", nerr)
		}
	}
	return err
}

// clock sets the clock from the NTP servers of the DHCP leases and of
// the configuration and keeps it in step in the background. The boot
// waits at most timeWait for a first answer; unreachable servers are a
// warning, not a failure: the client keeps asking.
func (m *Machine) clock(ctx context.Context) error {
	ntp := m.cfg.Services.NTP
	if !ntp.Enabled {
		m.log.Infof("time: NTP is off (services.ntp)")
		return nil
	}
	m.testNTP()
	s := &timesync.Syncer{Servers: ntp.Servers, Learned: m.dhcpNTP, Logf: m.log.Infof}
	first := make(chan error, 1)
	go s.Run(ctx, first)
	select {
	case err := <-first:
		if err != nil {
			m.log.Warnf("time: no NTP server answered (%v); asking again in the background", err)
			return nil
		}
		m.log.Infof("time: clock in step with %s, %s", strings.Join(s.Asked(), " "), time.Now().UTC().Format(time.RFC3339))
	case <-time.After(timeWait):
		m.log.Warnf("time: no answer from %s in %s; asking in the background", strings.Join(s.Asked(), " "), timeWait)
	}
	return nil
}

// dhcpNTP lists the NTP servers of the DHCP leases, by link name.
func (m *Machine) dhcpNTP() []string {
	if m.net == nil {
		return nil
	}
	leases := m.net.Leases()
	var out []string
	for _, name := range slices.Sorted(maps.Keys(leases)) {
		for _, a := range leases[name].NTP {
			out = append(out, a.String())
		}
	}
	return out
}

// printNetwork shows the network summary on the console.
func (m *Machine) printNetwork() {
	if m.net == nil {
		return
	}
	for _, l := range m.net.Summary() {
		m.log.Infof("network: %s", l)
	}
}
