package config

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestSplitCmdline(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []CmdlineArg
	}{
		{"", nil},
		{"  ro  quiet ", []CmdlineArg{{Key: "ro"}, {Key: "quiet"}}},
		{"console=ttyS0,115200 root=/dev/vda", []CmdlineArg{{"console", "ttyS0,115200", true}, {"root", "/dev/vda", true}}},
		{`kurma.hostname="my host" x`, []CmdlineArg{{"kurma.hostname", "my host", true}, {Key: "x"}}},
		{`"kurma.hostname=my host" x`, []CmdlineArg{{"kurma.hostname", "my host", true}, {Key: "x"}}},
		{`"quoted flag"`, []CmdlineArg{{Key: "quoted flag"}}},
		{`a=b=c`, []CmdlineArg{{"a", "b=c", true}}},
		{`a=`, []CmdlineArg{{"a", "", true}}},
		{`a="" b`, []CmdlineArg{{"a", "", true}, {Key: "b"}}},
		{`a="`, []CmdlineArg{{"a", "", true}}},
		{`a=x"y z"w q`, []CmdlineArg{{"a", `x"y z"w`, true}, {Key: "q"}}},
		{`a="unterminated b c`, []CmdlineArg{{"a", "unterminated b c", true}}},
		{"tab\tnew\nline", []CmdlineArg{{Key: "tab"}, {Key: "new"}, {Key: "line"}}},
		{"-- init args", []CmdlineArg{{Key: "--"}, {Key: "init"}, {Key: "args"}}},
	} {
		if got := SplitCmdline(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCmdline(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	l, errs := ParseCmdline(`BOOT_IMAGE=/vmlinuz console=ttyS0 kurma.hostname=first kurma.hostname="node-1" ` +
		`kurma.debug kurma.network.dns=1.1.1.1 kurma.network.dns=9.9.9.9 kurma.network.dns.search=example.com ` +
		`kurma.sysctls.net.ipv4.ip_forward=1 kurma.modules.extra=e1000 kurma.modules.extra=9p ` +
		`kurma.modules.parameters.e1000.copybreak=0 kurma.services.console.ssh-port=2222 ` +
		`kurma.images.trusted_keys.example.com/=/etc/kurma/keys/example.asc ` +
		`kurma.config.url=http://10.0.2.100/config/${mac} kurma.api.remote.tls.ca=/etc/ca.pem`)
	if len(errs) > 0 {
		t.Fatal(errStrings(errs))
	}
	eff := mergeOK(t, l)
	c := eff.Config
	if c.Hostname != "node-1" {
		t.Errorf("hostname = %q, want the last of the repeated keys", c.Hostname)
	}
	if !c.Debug {
		t.Errorf("debug = false, want a bare key to be true")
	}
	if got, want := c.Network.DNS.Servers, []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("9.9.9.9")}; !reflect.DeepEqual(got, want) {
		t.Errorf("dns servers = %v, want %v (repeated keys of a list collect)", got, want)
	}
	if got, want := c.Network.DNS.Search, []string{"example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("search = %v, want %v", got, want)
	}
	if got := c.Sysctls["net.ipv4.ip_forward"]; got != "1" {
		t.Errorf("sysctl = %q, want 1", got)
	}
	if got, want := c.Modules.Extra, []string{"e1000", "9p"}; !reflect.DeepEqual(got, want) {
		t.Errorf("extra = %v, want %v", got, want)
	}
	if got := c.Modules.Parameters["e1000"]["copybreak"]; got != "0" {
		t.Errorf("copybreak = %q, want 0", got)
	}
	if got := c.Services.Console.SSHPort; got != 2222 {
		t.Errorf("ssh_port = %d, want 2222 ('-' and '_' are the same in a key)", got)
	}
	if got, want := c.Images.TrustedKeys["example.com/"], []string{"/etc/kurma/keys/example.asc"}; !reflect.DeepEqual(got, want) {
		t.Errorf("trusted keys = %v, want %v", got, want)
	}
	if got := c.Datasources[len(c.Datasources)-1]; got.Kind != DatasourceURL || !got.Enabled || got.URL != "http://10.0.2.100/config/${mac}" {
		t.Errorf("url datasource = %+v", got)
	}
	if o, _ := eff.Origin("hostname"); o.String() != `cmdline kurma.hostname` {
		t.Errorf("origin = %q", o)
	}
}

func TestParseCmdlineErrors(t *testing.T) {
	for _, tc := range []struct{ cmdline, want string }{
		{"kurma.hostnme=x", `config: cmdline: kurma.hostnme: unknown key, did you mean "kurma.hostname"?`},
		{"kurma.network.dsn=1.1.1.1", `config: cmdline: kurma.network.dsn: unknown key, did you mean "kurma.network.dns"?`},
		{"kurma.frobnicate=1", `config: cmdline: kurma.frobnicate: unknown key`},
		{"kurma=1", `config: cmdline: kurma: unknown key`},
		{"kurma.hostname", `config: cmdline: kurma.hostname: needs a value (kurma.hostname=VALUE)`},
		{"kurma.hostname=bad_name", `config: cmdline: kurma.hostname: "bad_name" is not a valid hostname (labels of letters, digits and '-' separated by dots)`},
		{"kurma.network.dns=1.1.1", `config: cmdline: kurma.network.dns: "1.1.1" is not an IP address`},
		{"kurma.debug=maybe", `config: cmdline: kurma.debug: "maybe" is not a boolean (true or false)`},
		{"kurma.network.interfaces=eth0", `config: cmdline: kurma.network.interfaces: is a list of entries and cannot be set on the command line; use a config file or a datasource`},
		{"kurma.api.remote=x", `config: cmdline: kurma.api.remote: is a section, not a value; name one of its keys (kurma.api.remote.address, kurma.api.remote.tls.ca, kurma.api.remote.tls.cert, kurma.api.remote.tls.key)`},
		{"kurma.config.url=ftp://x/", `config: cmdline: kurma.config.url: "ftp://x/" is not an http or https URL`},
		{"kurma.config.url=http://x/${serial}", `config: cmdline: kurma.config.url: "http://x/${serial}": unknown variable ${serial} (known: ${hostname}, ${mac}, ${uuid})`},
		{"kurma.sysctls.../etc/passwd=1", `config: cmdline: kurma.sysctls.../etc/passwd: "../etc/passwd" is not a sysctl name (net.ipv4.ip_forward)`},
	} {
		_, errs := ParseCmdline("ro " + tc.cmdline + " quiet")
		if got := errStrings(errs); got != tc.want {
			t.Errorf("ParseCmdline(%q):\n got %s\nwant %s", tc.cmdline, got, tc.want)
		}
	}
}

func TestCmdlineDatasourcesUnknown(t *testing.T) {
	l, errs := ParseCmdline("kurma.datasources=nocloud,ec2")
	if len(errs) > 0 {
		t.Fatal(errStrings(errs))
	}
	eff, errs := Merge(Defaults(), l)
	want := `config: cmdline: kurma.datasources: "ec2" is not a datasource (known: nocloud, configdrive)`
	if got := errStrings(errs); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if ds := eff.Config.Datasources; len(ds) != 2 || !ds[0].Enabled || ds[1].Enabled {
		t.Errorf("datasources = %+v, want nocloud on, configdrive off", ds)
	}
}

func TestCmdlineKeys(t *testing.T) {
	keys := CmdlineKeys()
	for _, want := range []string{"kurma.hostname", "kurma.debug", "kurma.config.url", "kurma.datasources", "kurma.network.dns", "kurma.sysctls.NAME", "kurma.modules.parameters.NAME.NAME"} {
		if !contains(keys, want) {
			t.Errorf("CmdlineKeys lacks %s", want)
		}
	}
}
