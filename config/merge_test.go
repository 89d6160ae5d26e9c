package config

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestMergeScalarLaterWins(t *testing.T) {
	a := parse(t, "a", "hostname: first\nservices: {console: {ssh_port: 2222}}")
	b := parse(t, "b", "hostname: second")
	eff := mergeOK(t, a, b)
	if got, want := eff.Config.Hostname, "second"; got != want {
		t.Errorf("hostname = %q, want %q", got, want)
	}
	if got, want := eff.Config.Services.Console.SSHPort, 2222; got != want {
		t.Errorf("ssh_port = %d, want %d (an object is merged field by field)", got, want)
	}
	if got, want := eff.Config.Services.Console.Enabled, true; got != want {
		t.Errorf("console.enabled = %v, want the default %v", got, want)
	}
}

func TestMergeObjectsFieldByField(t *testing.T) {
	a := parse(t, "a", "network: {dns: {servers: [1.1.1.1], search: [a.example]}}")
	b := parse(t, "b", "network: {dns: {search: [b.example]}, proxy: {http: 'http://proxy:3128'}}")
	eff := mergeOK(t, a, b)
	d := eff.Config.Network.DNS
	if got, want := d.Servers, []netip.Addr{netip.MustParseAddr("1.1.1.1")}; !reflect.DeepEqual(got, want) {
		t.Errorf("servers = %v, want %v", got, want)
	}
	if got, want := d.Search, []string{"b.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("search = %v, want %v", got, want)
	}
	if got, want := eff.Config.Network.Proxy.HTTP, "http://proxy:3128"; got != want {
		t.Errorf("proxy.http = %q, want %q", got, want)
	}
}

func TestMergeMapsKeyByKey(t *testing.T) {
	a := parse(t, "a", `
sysctls: {net.ipv4.ip_forward: 1, vm.swappiness: 10}
modules: {parameters: {e1000: {copybreak: 0, debug: 1}}}
bootstrap: {containers: [{name: app, image: a, env: {A: "1", B: "2"}, isolators: {"resource/memory": {limit: 1G}}}]}`)
	b := parse(t, "b", `
sysctls: {vm.swappiness: 60}
modules: {parameters: {e1000: {debug: 2}, virtio_net: {napi_tx: 1}}}
bootstrap: {containers: [{name: app, env: {B: "3"}, isolators: {"resource/memory": {request: 1M}}}]}`)
	eff := mergeOK(t, a, b)
	c := eff.Config
	if got, want := c.Sysctls, map[string]string{"net.ipv4.ip_forward": "1", "vm.swappiness": "60"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sysctls = %v, want %v", got, want)
	}
	want := map[string]map[string]string{"e1000": {"copybreak": "0", "debug": "2"}, "virtio_net": {"napi_tx": "1"}}
	if got := c.Modules.Parameters; !reflect.DeepEqual(got, want) {
		t.Errorf("parameters = %v, want %v", got, want)
	}
	app := c.Bootstrap.Containers[0]
	if got, want := app.Env, map[string]string{"A": "1", "B": "3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("env = %v, want %v", got, want)
	}
	// An isolator's value is one value: the later replaces it whole.
	if got, want := app.Isolators, map[string]any{"resource/memory": map[string]any{"request": "1M"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("isolators = %v, want %v", got, want)
	}
}

func TestMergeAppendLists(t *testing.T) {
	key1 := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7vYhyD4cG9v8oVZbKQhrGJm4jkGJ8gPpNVyq9s3vQk one"
	key2 := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx3LkWjv2mGJUxXzJcrGJ8XwZqx0vWwWmT1o0oYy2Xk two"
	a := parse(t, "a", "modules: {extra: [e1000, virtio_net]}\nimages: {offline_dirs: [/a]}\nservices: {console: {ssh_authorized_keys: ['"+key1+"']}}")
	b := parse(t, "b", "modules: {extra: [virtio_net, 9p]}\nimages: {offline_dirs: [/b]}\nservices: {console: {ssh_authorized_keys: ['"+key2+"', '"+key1+"']}}")
	eff := mergeOK(t, a, b)
	c := eff.Config
	if got, want := c.Modules.Extra, []string{"e1000", "virtio_net", "9p"}; !reflect.DeepEqual(got, want) {
		t.Errorf("extra = %v, want %v", got, want)
	}
	if got, want := c.Images.OfflineDirs, []string{"/a", "/b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("offline_dirs = %v, want %v", got, want)
	}
	if got, want := c.Services.Console.SSHAuthorizedKeys, []string{key1, key2}; !reflect.DeepEqual(got, want) {
		t.Errorf("ssh keys = %v, want %v", got, want)
	}
	if o, _ := eff.Origin("modules.extra[2]"); o.Layer != "b" {
		t.Errorf("modules.extra[2] set by %v, want layer b", o)
	}
}

func TestMergeReplaceTag(t *testing.T) {
	a := parse(t, "a", "modules: {extra: [e1000]}\nsysctls: {a: 1}\nbootstrap: {containers: [{name: x, image: x}]}")
	b := parse(t, "b", "modules: {extra: !replace [9p]}\nsysctls: !replace {b: 2}\nbootstrap: {containers: !replace [{name: y, image: y}]}")
	c := mergeOK(t, a, b).Config
	if got, want := c.Modules.Extra, []string{"9p"}; !reflect.DeepEqual(got, want) {
		t.Errorf("extra = %v, want %v", got, want)
	}
	if got, want := c.Sysctls, map[string]string{"b": "2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sysctls = %v, want %v", got, want)
	}
	if got := len(c.Bootstrap.Containers); got != 1 || c.Bootstrap.Containers[0].Name != "y" {
		t.Errorf("containers = %+v, want only y", c.Bootstrap.Containers)
	}
}

func TestMergeNamedLists(t *testing.T) {
	a := parse(t, "a", `
bootstrap:
  containers:
    - {name: first, image: example.com/first, args: [a, b], kind: run-to-completion}
    - {name: second, image: example.com/second}`)
	b := parse(t, "b", `
bootstrap:
  containers:
    - {name: third, image: example.com/third}
    - {name: first, args: [c]}
    - {name: second, enabled: false}
datasources:
  - {kind: url, url: "http://10.0.2.2/config"}
  - {name: metadata, kind: url, url: "http://169.254.169.254/kurma", timeout: 5s}`)
	c := mergeOK(t, a, b).Config
	var names []string
	for _, ct := range c.Bootstrap.Containers {
		names = append(names, ct.Name)
	}
	if want := []string{"first", "second", "third"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("containers = %v, want %v (same names merge in place, new ones append)", names, want)
	}
	first := c.Bootstrap.Containers[0]
	if first.Image != "example.com/first" || !reflect.DeepEqual(first.Args, []string{"c"}) || first.Kind != KindRunToCompletion {
		t.Errorf("first = %+v, want its image and kind kept, args replaced", first)
	}
	if c.Bootstrap.Containers[1].Enabled {
		t.Errorf("second is enabled, want disabled by the later layer")
	}
	if !c.Bootstrap.Containers[2].Enabled || c.Bootstrap.Containers[2].Kind != KindService {
		t.Errorf("third = %+v, want the entry defaults (enabled service)", c.Bootstrap.Containers[2])
	}
	var ds []string
	for _, d := range c.Datasources {
		ds = append(ds, d.key())
	}
	if want := []string{"nocloud", "configdrive", "url", "metadata"}; !reflect.DeepEqual(ds, want) {
		t.Fatalf("datasources = %v, want %v", ds, want)
	}
	url := c.Datasources[2]
	if !url.Enabled || url.URL != "http://10.0.2.2/config" || url.Timeout != 0 {
		t.Errorf("url datasource = %+v, want enabled with its URL and no timeout (the default, DefaultURLTimeout, applies)", url)
	}
}

func TestMergeReplacedLists(t *testing.T) {
	a := parse(t, "a", `
network:
  interfaces: [{name: eth0, dhcp: true}, {name: eth1, dhcp: true}]
  dns: {servers: [1.1.1.1, 8.8.8.8]}
disks: [{label: data, usages: [images]}]
services: {ntp: {servers: [a.pool.ntp.org]}}
images: {allow: {names: [example.com/]}}`)
	b := parse(t, "b", `
network:
  interfaces: [{mac: "52:54:00:12:34:56", addresses: [10.0.0.5/24]}]
  dns: {servers: [9.9.9.9]}
disks: [{path: /dev/vdb, usages: [pods]}]
services: {ntp: {servers: [b.pool.ntp.org]}}
images: {allow: {names: [kurma.io/]}}`)
	c := mergeOK(t, a, b).Config
	if got := c.Network.Interfaces; len(got) != 1 || got[0].MAC != "52:54:00:12:34:56" || got[0].DHCP {
		t.Errorf("interfaces = %+v, want only the later layer's", got)
	}
	if got, want := c.Network.DNS.Servers, []netip.Addr{netip.MustParseAddr("9.9.9.9")}; !reflect.DeepEqual(got, want) {
		t.Errorf("dns servers = %v, want %v", got, want)
	}
	if got := c.Disks; len(got) != 1 || got[0].Path != "/dev/vdb" {
		t.Errorf("disks = %+v, want only /dev/vdb", got)
	}
	if got, want := c.Services.NTP.Servers, []string{"b.pool.ntp.org"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ntp servers = %v, want %v", got, want)
	}
	if got, want := c.Images.Allow.Names, []string{"kurma.io/"}; !reflect.DeepEqual(got, want) {
		t.Errorf("allow.names = %v, want %v", got, want)
	}
}

func TestMergeNullIsUnset(t *testing.T) {
	a := parse(t, "a", "hostname: node\nnetwork: {dns: {servers: [1.1.1.1]}}")
	b := parse(t, "b", "hostname:\nnetwork: {dns: {servers: ~}}")
	c := mergeOK(t, a, b).Config
	if c.Hostname != "node" || len(c.Network.DNS.Servers) != 1 {
		t.Errorf("hostname %q, servers %v: want a null to leave the earlier value", c.Hostname, c.Network.DNS.Servers)
	}
}

func TestMergeLeavesLayersUnchanged(t *testing.T) {
	a := parse(t, "a", "modules: {extra: [a]}\nbootstrap: {containers: [{name: x, image: x}]}")
	b := parse(t, "b", "modules: {extra: [b]}\nbootstrap: {containers: [{name: x, args: [1]}]}")
	first := mergeOK(t, a, b).Config
	second := mergeOK(t, a, b).Config
	if !reflect.DeepEqual(first, second) {
		t.Errorf("merging twice differs:\n%+v\n%+v", first, second)
	}
	if only := mergeOK(t, a).Config; !reflect.DeepEqual(only.Modules.Extra, []string{"a"}) || only.Bootstrap.Containers[0].Args != nil {
		t.Errorf("layer a changed by a merge: %+v", only)
	}
}

func TestMergeYAMLAliasesAndMergeKeys(t *testing.T) {
	l := parse(t, "a", `
bootstrap:
  containers:
    - &base {name: one, image: example.com/app, env: {LEVEL: info}}
    - <<: *base
      name: two
      env: {LEVEL: debug}`)
	c := mergeOK(t, l).Config
	if got := c.Bootstrap.Containers; len(got) != 2 || got[1].Image != "example.com/app" || got[1].Env["LEVEL"] != "debug" {
		t.Errorf("containers = %+v, want two built from one with its own env", got)
	}
}

func TestDatasourceOrderFromCmdline(t *testing.T) {
	a := parse(t, "a", "datasources: [{kind: url, url: 'http://example.com/c', timeout: 5s}]")
	c, errs := ParseCmdline("kurma.datasources=url,nocloud")
	if len(errs) > 0 {
		t.Fatal(errStrings(errs))
	}
	got := mergeOK(t, a, c).Config.Datasources
	want := []struct {
		name string
		on   bool
	}{{"url", true}, {"nocloud", true}, {"configdrive", false}}
	if len(got) != len(want) {
		t.Fatalf("datasources = %+v, want %v", got, want)
	}
	for i, w := range want {
		if got[i].key() != w.name || got[i].Enabled != w.on {
			t.Errorf("datasources[%d] = %s enabled %v, want %s enabled %v", i, got[i].key(), got[i].Enabled, w.name, w.on)
		}
	}
	if got[0].Timeout.String() != "5s" {
		t.Errorf("url timeout = %s, want the earlier layer's 5s kept", got[0].Timeout)
	}
}

func TestEntryDefaultsHaveOrigin(t *testing.T) {
	eff := mergeOK(t, parse(t, "a", "bootstrap: {containers: [{name: x, image: x}]}"))
	if o, ok := eff.Origin("bootstrap.containers[0].enabled"); !ok || o.Layer != LayerDefaults {
		t.Errorf("origin of enabled = %v, %v; want defaults", o, ok)
	}
	if o, _ := eff.Origin("bootstrap.containers[0].image"); o.Layer != "a" || o.Line != 1 {
		t.Errorf("origin of image = %+v, want layer a line 1", o)
	}
}
