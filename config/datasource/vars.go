package datasource

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Vars are the values substituted for ${name} in a URL: mac, uuid and
// hostname.
type Vars map[string]string

// Substitute replaces each ${name} in template by vars[name], escaped for
// a URL path or query. A name that vars lacks, or a "${" without its "}",
// is an error naming the known variables.
func Substitute(template string, vars Vars) (string, error) {
	var b strings.Builder
	rest := template
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		rest = rest[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated \"${\" (write ${name} with one of %s)", known(vars))
		}
		name := rest[:j]
		v, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("unknown variable ${%s} (known: %s)", name, known(vars))
		}
		b.WriteString(url.PathEscape(v))
		rest = rest[j+1:]
	}
}

func known(vars Vars) string {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, "${"+n+"}")
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// SystemVars reads the variables of this machine: the MAC address of the
// first interface (by index) that has one, the SMBIOS system UUID under
// sysRoot ("/sys"), and the kernel's hostname. A value that cannot be read
// is the empty string, so a template still expands.
func SystemVars(sysRoot string) Vars {
	v := Vars{"mac": "", "uuid": "", "hostname": ""}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if len(i.HardwareAddr) == 6 && i.Flags&net.FlagLoopback == 0 {
				v["mac"] = i.HardwareAddr.String()
				break
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(sysRoot, "class/dmi/id/product_uuid")); err == nil {
		v["uuid"] = strings.ToLower(strings.TrimSpace(string(b)))
	}
	if h, err := os.Hostname(); err == nil {
		v["hostname"] = h
	}
	return v
}
