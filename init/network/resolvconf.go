package network

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// ResolvConf is the resolver configuration: name servers and search
// domains, in order.
type ResolvConf struct {
	Servers []netip.Addr
	Search  []string
}

// Add appends servers and domains not already there.
func (r *ResolvConf) Add(servers []netip.Addr, search []string) {
	for _, s := range servers {
		if s.IsValid() && !contains(r.Servers, s) {
			r.Servers = append(r.Servers, s)
		}
	}
	for _, d := range search {
		if d = strings.TrimSuffix(d, "."); d != "" && !contains(r.Search, d) {
			r.Search = append(r.Search, d)
		}
	}
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Render writes the resolv.conf(5) text. Resolvers read the first three
// name servers (MAXNS) and six search domains; the rest are kept as
// comments, so the file still shows what was offered.
func (r ResolvConf) Render() []byte {
	var b strings.Builder
	b.WriteString("# Written by kurma (PID 1): network.dns of the configuration, then what DHCP offered.\n")
	if len(r.Search) > 0 {
		n := min(len(r.Search), 6)
		fmt.Fprintf(&b, "search %s\n", strings.Join(r.Search[:n], " "))
		if n < len(r.Search) {
			fmt.Fprintf(&b, "# not used (more than 6): search %s\n", strings.Join(r.Search[n:], " "))
		}
	}
	for i, s := range r.Servers {
		if i >= 3 {
			fmt.Fprintf(&b, "# not used (more than 3): nameserver %s\n", s)
			continue
		}
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(r.Servers) == 0 {
		b.WriteString("# no name servers: neither the configuration nor DHCP gave any\n")
	}
	return []byte(b.String())
}

// writeFile replaces path atomically: a reader sees the old file or the
// new one.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone after the rename; there on failure
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
