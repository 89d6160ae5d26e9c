package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// host applies the host settings of the configuration: the hostname and
// the sysctls.
func (m *Machine) host(context.Context) error {
	var errs []error
	if err := setHostname(m.cfg.Hostname); err != nil {
		errs = append(errs, err)
	}
	keys := make([]string, 0, len(m.cfg.Sysctls))
	for k := range m.cfg.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := writeSysctl(k, m.cfg.Sysctls[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func setHostname(name string) error {
	if name == "" {
		return nil
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("set hostname %q: %w", name, err)
	}
	return os.WriteFile("/etc/hostname", []byte(name+"\n"), 0o644)
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
