package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kurmaos/kurma/config"
)

func TestMatch(t *testing.T) {
	links := []Link{
		{Name: "eth0", MAC: "52:54:00:12:34:56"},
		{Name: "eth1", MAC: "52:54:00:aa:bb:cc"},
		{Name: "enp0s3", MAC: "52:54:00:00:00:03"},
		{Name: "wlan0", MAC: "02:00:00:00:00:01"},
		{Name: "tun0"},
	}
	tests := []struct {
		name    string
		entries []config.Interface
		want    []int
	}{
		{"default e* glob", []config.Interface{{Name: "e*", DHCP: true}}, []int{0, 0, 0, -1, -1}},
		{"first entry wins", []config.Interface{{Name: "eth1"}, {Name: "eth*"}}, []int{1, 0, -1, -1, -1}},
		{"MAC in upper case", []config.Interface{{MAC: "52:54:00:AA:BB:CC"}}, []int{-1, 0, -1, -1, -1}},
		{"name and MAC must both match", []config.Interface{{Name: "eth0", MAC: "52:54:00:aa:bb:cc"}, {Name: "eth1", MAC: "52:54:00:aa:bb:cc"}}, []int{-1, 1, -1, -1, -1}},
		{"character class", []config.Interface{{Name: "eth[1-3]"}, {Name: "en*"}}, []int{-1, 0, 1, -1, -1}},
		{"an entry with neither matches nothing", []config.Interface{{DHCP: true}}, []int{-1, -1, -1, -1, -1}},
		{"a link without a MAC never matches a MAC", []config.Interface{{MAC: "00:00:00:00:00:00"}}, []int{-1, -1, -1, -1, -1}},
		{"no entries", nil, []int{-1, -1, -1, -1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Match(links, tt.entries); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestResolvConf(t *testing.T) {
	const header = "# Written by kurma (PID 1): network.dns of the configuration, then what DHCP offered.\n"
	tests := []struct {
		name string
		add  [][2]any // servers, search
		want string
	}{
		{"nothing", nil, header + "# no name servers: neither the configuration nor DHCP gave any\n"},
		{"configured then DHCP, without repeats",
			[][2]any{{addrs("10.0.0.53"), []string{"example.com"}}, {addrs("10.0.0.53", "10.0.2.3"), []string{"example.com.", "lab.example.com"}}},
			header + "search example.com lab.example.com\nnameserver 10.0.0.53\nnameserver 10.0.2.3\n"},
		{"IPv6 server", [][2]any{{addrs("fd00::53"), []string(nil)}}, header + "nameserver fd00::53\n"},
		{"more than three servers",
			[][2]any{{addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"), []string(nil)}},
			header + "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n# not used (more than 3): nameserver 10.0.0.4\n"},
		{"more than six domains",
			[][2]any{{addrs("10.0.0.1"), []string{"a", "b", "c", "d", "e", "f", "g"}}},
			header + "search a b c d e f\n# not used (more than 6): search g\nnameserver 10.0.0.1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r ResolvConf
			for _, a := range tt.add {
				r.Add(a[0].([]netip.Addr), a[1].([]string))
			}
			if got := string(r.Render()); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestProxy(t *testing.T) {
	if got := ProxyVars(config.Proxy{NoProxy: []string{"localhost"}}); got != nil {
		t.Errorf("no proxy: got %v", got)
	}
	p := config.Proxy{HTTP: "http://proxy:3128", HTTPS: "http://proxy:3129", NoProxy: []string{"localhost", ".example.com", "10.0.0.0/8"}}
	want := []string{
		"HTTP_PROXY=http://proxy:3128", "http_proxy=http://proxy:3128",
		"HTTPS_PROXY=http://proxy:3129", "https_proxy=http://proxy:3129",
		"NO_PROXY=localhost,.example.com,10.0.0.0/8", "no_proxy=localhost,.example.com,10.0.0.0/8",
	}
	if got := ProxyVars(p); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	path := filepath.Join(t.TempDir(), "run", "proxy.env")
	t.Setenv("HTTPS_PROXY", "")
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("NO_PROXY", "")
	if err := ApplyProxy(path, p); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != strings.Join(want, "\n")+"\n" {
		t.Errorf("%s: %q, %v", path, data, err)
	}
	if os.Getenv("https_proxy") != "http://proxy:3129" {
		t.Errorf("https_proxy = %q", os.Getenv("https_proxy"))
	}
	if err := ApplyProxy(path, config.Proxy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s is still there without a proxy: %v", path, err)
	}
}
