package boot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// host applies the host settings of the configuration: the hostname and
// the sysctls. The clock is the time phase's, after the network.
func (m *Machine) host(context.Context) error {
	return errors.Join(m.applyHostname(), m.applySysctls())
}

// applyHostname sets the hostname: the configuration's, else the one a
// DHCP lease gave, else kurma-<MAC of the first link that has one>. It
// runs again whenever one of them changes.
func (m *Machine) applyHostname() error {
	m.hostMu.Lock()
	defer m.hostMu.Unlock()
	name, from := m.cfg.Hostname, "configuration"
	if name == "" && m.dhcpHostname != "" {
		name, from = m.dhcpHostname, "dhcp"
	}
	if name == "" {
		name, from = fallbackHostname(), "fallback"
	}
	if cur, err := os.Hostname(); err == nil && cur == name {
		return nil
	}
	if err := setHostname(name); err != nil {
		return err
	}
	m.log.Infof("hostname %s (%s)", name, from)
	return nil
}

// fallbackHostname is kurma-<MAC without colons> of the first link, by
// index, that has a MAC address; plain kurma when none has.
func fallbackHostname() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "kurma"
	}
	for _, i := range ifs {
		if len(i.HardwareAddr) == 6 && i.Flags&net.FlagLoopback == 0 {
			return "kurma-" + strings.ReplaceAll(i.HardwareAddr.String(), ":", "")
		}
	}
	return "kurma"
}

func setHostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("set hostname %q: %w", name, err)
	}
	return os.WriteFile("/etc/hostname", []byte(name+"\n"), 0o644)
}

// applySysctls writes the sysctls of the configuration, in name order.
func (m *Machine) applySysctls() error {
	keys := make([]string, 0, len(m.cfg.Sysctls))
	for k := range m.cfg.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if err := writeSysctl(k, m.cfg.Sysctls[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeSysctl writes a value to /proc/sys: net.ipv4.ip_forward is
// /proc/sys/net/ipv4/ip_forward.
func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
