package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestInvalidConfigurations is a table of invalid files, each with the
// exact messages a user sees.
func TestInvalidConfigurations(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"bad CIDR", `
network:
  interfaces:
    - name: eth0
      addresses: [10.0.0.1/33]`,
			[]string{`config: /etc/kurma/config.yaml:5: network.interfaces[0].addresses[0]: "10.0.0.1/33" is not a CIDR address`}},
		{"unknown key with suggestion", "hostnmae: x",
			[]string{`config: /etc/kurma/config.yaml:1: unknown key "hostnmae", did you mean "hostname"?`}},
		{"unknown nested key with suggestion", "network:\n  interfaces:\n    - name: eth0\n      gateway: 10.0.0.1\n      mtus: 9000",
			[]string{`config: /etc/kurma/config.yaml:5: network.interfaces[0]: unknown key "mtus", did you mean "mtu"?`}},
		{"unknown key without suggestion", "services:\n  console:\n    frobnicate: true",
			[]string{`config: /etc/kurma/config.yaml:3: services.console: unknown key "frobnicate"`}},
		{"case and dash", "api:\n  Socket-Group: wheel",
			[]string{`config: /etc/kurma/config.yaml:2: api: unknown key "Socket-Group", did you mean "socket_group"?`}},
		{"YAML syntax", "hostname: a\nnetwork: [\n",
			[]string{`config: /etc/kurma/config.yaml:2: did not find expected node content (YAML syntax); the whole file is ignored`}},
		{"not a mapping", "- a\n- b",
			[]string{`config: /etc/kurma/config.yaml:1: expected a mapping (key: value), got a list`}},
		{"list expected", "network:\n  dns:\n    servers: 1.1.1.1",
			[]string{`config: /etc/kurma/config.yaml:3: network.dns.servers: expected a list, got "1.1.1.1"`}},
		{"scalar expected", "hostname: [a]",
			[]string{`config: /etc/kurma/config.yaml:1: hostname: expected a value, got a list`}},
		{"bad IP", "network:\n  dns:\n    servers: [1.1.1.1, 300.1.1.1]",
			[]string{`config: /etc/kurma/config.yaml:3: network.dns.servers[1]: "300.1.1.1" is not an IP address`}},
		{"bad NTP servers", "services:\n  ntp:\n    servers: [ntp.example, \"10.0.0.1:123\", \"[fd00::1]:123\", \"ntp.example:99999\", \":123\", -bad-]",
			[]string{
				`config: /etc/kurma/config.yaml:3: services.ntp.servers[3]: "ntp.example:99999" has a bad port: "99999" is not a port (1-65535)`,
				`config: /etc/kurma/config.yaml:3: services.ntp.servers[4]: ":123" is not a host name or IP address, with an optional :port`,
				`config: /etc/kurma/config.yaml:3: services.ntp.servers[5]: "-bad-" is not a host name or IP address, with an optional :port`,
			}},
		{"bad hostname", "hostname: -bad-",
			[]string{`config: /etc/kurma/config.yaml:1: hostname: "-bad-" is not a valid hostname (labels of letters, digits and '-' separated by dots)`}},
		{"bad MAC", "network:\n  interfaces:\n    - mac: 52:54:00:zz:34:56",
			[]string{
				`config: /etc/kurma/config.yaml:3: network.interfaces[0].mac: "52:54:00:zz:34:56" is not a MAC address (52:54:00:12:34:56)`,
				`config: /etc/kurma/config.yaml:3: network.interfaces[0]: matches no link: give a name, a glob or a mac; entry ignored`,
			}},
		{"bad glob", "network:\n  interfaces:\n    - name: 'eth['",
			[]string{
				`config: /etc/kurma/config.yaml:3: network.interfaces[0].name: "eth[" is not a valid glob`,
				`config: /etc/kurma/config.yaml:3: network.interfaces[0]: matches no link: give a name, a glob or a mac; entry ignored`,
			}},
		{"bad MTU", "network:\n  interfaces:\n    - name: eth0\n      mtu: 20",
			[]string{`config: /etc/kurma/config.yaml:4: network.interfaces[0].mtu: "20" is not an MTU (68-65535, or 0 for the driver's)`}},
		{"bad boolean", "debug: maybe",
			[]string{`config: /etc/kurma/config.yaml:1: debug: "maybe" is not a boolean (true or false)`}},
		{"bad integer", "services:\n  console:\n    ssh_port: 99999",
			[]string{`config: /etc/kurma/config.yaml:3: services.console.ssh_port: "99999" is not a port (1-65535)`}},
		{"bad duration", "datasources:\n  - kind: url\n    url: http://x/\n    timeout: soon",
			[]string{`config: /etc/kurma/config.yaml:4: datasources[0].timeout: "soon" is not a duration (e.g. 30s, 5m, 1h30m)`}},
		{"bad size", "images:\n  limits:\n    download: lots",
			[]string{`config: /etc/kurma/config.yaml:3: images.limits.download: "lots" is not a size (e.g. 512MiB, 2G, 1048576)`}},
		{"bad enum", "disks:\n  - path: /dev/vdb\n    format: sometimes",
			[]string{`config: /etc/kurma/config.yaml:3: disks[0].format: "sometimes" is not one of never, if-blank, force`}},
		{"bad usage", "disks:\n  - path: /dev/vdb\n    usages: [images, cache]",
			[]string{`config: /etc/kurma/config.yaml:3: disks[0].usages[1]: "cache" is not one of images, pods, volumes, logs`}},
		{"device not under /dev", "disks:\n  - path: /tmp/disk",
			[]string{`config: /etc/kurma/config.yaml:2: disks[0].path: "/tmp/disk" is not a device path under /dev/`,
				`config: /etc/kurma/config.yaml:2: disks[0]: name the device by one of path, label or uuid (it has none); entry ignored`}},
		{"two device names", "disks:\n  - path: /dev/vdb\n    label: data",
			[]string{`config: /etc/kurma/config.yaml:2: disks[0]: name the device by one of path, label or uuid (it has path and label); entry ignored`}},
		{"usage on two disks", "disks:\n  - path: /dev/vdb\n    usages: [images]\n  - label: data\n    usages: [pods, images]",
			[]string{`config: /etc/kurma/config.yaml:5: disks[1].usages[1]: "images" is already on disks[0]; a usage is on one disk`}},
		{"user namespaces among the host's users", "pods:\n  user_namespaces:\n    first_id: 1000",
			[]string{`config: /etc/kurma/config.yaml:3: pods.user_namespaces.first_id: 1000 is below 65536, the host's own users; pods in user namespaces are refused`}},
		{"user namespaces past the last ID", "pods:\n  user_namespaces:\n    first_id: 4294000000\n    ranges: 100",
			[]string{`config: /etc/kurma/config.yaml:4: pods.user_namespaces.ranges: 100 ranges of 65536 IDs from 4294000000 end at 4300553599, past the last ID (4294967294); pods in user namespaces are refused`}},
		{"bad uuid", "disks:\n  - uuid: not-a-uuid",
			[]string{`config: /etc/kurma/config.yaml:2: disks[0].uuid: "not-a-uuid" is not a filesystem UUID (8-4-4-4-12 hex digits, or XXXX-XXXX)`,
				`config: /etc/kurma/config.yaml:2: disks[0]: name the device by one of path, label or uuid (it has none); entry ignored`}},
		{"plaintext password", "services:\n  console:\n    password: hunter2",
			[]string{`config: /etc/kurma/config.yaml:3: services.console.password: the value (not shown) is not a crypt(3) hash ("$y$…": mkpasswd -m yescrypt) or none`}},
		{"MD5 password", "services:\n  console:\n    password: $1$saltsalt$e0tpAs/3MQjFhmIELWqtK0",
			[]string{`config: /etc/kurma/config.yaml:3: services.console.password: the value (not shown) is a crypt(3) hash of a method the console does not check: use yescrypt ("$y$…", mkpasswd -m yescrypt), SHA-512 ("$6$…", mkpasswd -m sha-512), SHA-256 ("$5$…") or bcrypt ("$2b$…"), or none`}},
		{"bad ssh key", "services:\n  console:\n    ssh_authorized_keys: [ssh-ed25519 notbase64 me]",
			[]string{`config: /etc/kurma/config.yaml:3: services.console.ssh_authorized_keys[0]: "ssh-ed25519 notbase64 me" is not an OpenSSH public key (ssh-ed25519 AAAA… comment)`}},
		{"remote without TLS", "api:\n  remote:\n    address: :4443",
			[]string{`config: /etc/kurma/config.yaml:3: api.remote.address: remote access needs mutual TLS: set api.remote.tls.cert, key and ca; the remote listener stays off`}},
		{"relative path", "api:\n  socket: run/kurma.sock",
			[]string{`config: /etc/kurma/config.yaml:2: api.socket: "run/kurma.sock" is not a clean absolute path`}},
		{"bad proxy", "network:\n  proxy:\n    http: proxy:3128",
			[]string{`config: /etc/kurma/config.yaml:3: network.proxy.http: "proxy:3128" is not a proxy URL (http://host:port)`}},
		{"container without name", "bootstrap:\n  containers:\n    - image: example.com/app",
			[]string{`config: /etc/kurma/config.yaml:3: bootstrap.containers[0]: name is missing (every entry needs one); entry ignored`}},
		{"container without image", "bootstrap:\n  containers:\n    - name: app",
			[]string{`config: /etc/kurma/config.yaml:3: bootstrap.containers[0].image: missing: an enabled container needs an image; container "app" ignored`}},
		{"duplicate container", "bootstrap:\n  containers:\n    - {name: app, image: a}\n    - {name: app, image: b}",
			[]string{`config: /etc/kurma/config.yaml:4: bootstrap.containers[1]: "app" is already the name of bootstrap.containers[0]; entry ignored`}},
		{"run-to-completion always", "bootstrap:\n  containers:\n    - name: init\n      image: a\n      kind: run-to-completion\n      restart: {policy: always}",
			[]string{`config: /etc/kurma/config.yaml:6: bootstrap.containers[0].restart.policy: a run-to-completion container cannot restart always (use on-failure or never)`}},
		{"backoff over max", "bootstrap:\n  containers:\n    - name: app\n      image: a\n      restart: {backoff: 2m}",
			[]string{`config: /etc/kurma/config.yaml:5: bootstrap.containers[0].restart.backoff: 2m0s is longer than max_backoff (1m0s)`}},
		{"bad env name", "bootstrap:\n  containers:\n    - name: app\n      image: a\n      env: {1BAD: x}",
			[]string{`config: /etc/kurma/config.yaml:5: bootstrap.containers[0].env.1BAD: "1BAD" is not an environment variable name`}},
		{"bad file mode", "bootstrap:\n  containers:\n    - name: app\n      image: a\n      files: [{path: /etc/x, mode: '0999'}]",
			[]string{`config: /etc/kurma/config.yaml:5: bootstrap.containers[0].files[0].mode: "0999" is not an octal file mode (0644)`}},
		{"host volume without source", "bootstrap:\n  containers:\n    - name: app\n      image: a\n      volumes: [{name: data, kind: host, path: /data}]",
			[]string{`config: /etc/kurma/config.yaml:5: bootstrap.containers[0].volumes[0].source: missing: a host volume needs the host directory; volume ignored`}},
		{"isolator with non-string key", "bootstrap:\n  containers:\n    - name: app\n      image: a\n      isolators: {resource/cpu: {[1]: 2}}",
			[]string{`config: /etc/kurma/config.yaml:5: bootstrap.containers[0].isolators["resource/cpu"]: keys of a mapping must be strings`}},
		{"url datasource without url", "datasources:\n  - kind: url",
			[]string{`config: /etc/kurma/config.yaml:2: datasources[2].url: missing: an enabled url datasource needs a URL; datasource ignored`}},
		{"datasource option of another kind", "datasources:\n  - kind: nocloud\n    url: http://x/",
			[]string{`config: /etc/kurma/config.yaml:3: datasources[0].url: applies to the url kind only`}},
		{"datasource without kind", "datasources:\n  - name: mine",
			[]string{`config: /etc/kurma/config.yaml:2: datasources[2]: kind is missing (url, nocloud or configdrive); entry ignored`}},
		{"datasource with neither", "datasources:\n  - enabled: true",
			[]string{`config: /etc/kurma/config.yaml:2: datasources[0]: name or kind is missing (entries are told apart by it); entry ignored`}},
		{"bad URL variable", "datasources:\n  - kind: url\n    url: http://x/${serial}",
			[]string{`config: /etc/kurma/config.yaml:3: datasources[0].url: "http://x/${serial}": unknown variable ${serial} (known: ${hostname}, ${mac}, ${uuid})`,
				`config: /etc/kurma/config.yaml:2: datasources[2].url: missing: an enabled url datasource needs a URL; datasource ignored`}},
		{"bad sysctl", "sysctls:\n  ../../etc/shadow: 1",
			[]string{`config: /etc/kurma/config.yaml:2: sysctls["../../etc/shadow"]: "../../etc/shadow" is not a sysctl name (net.ipv4.ip_forward)`}},
		{"duplicate key", "hostname: a\nhostname: b",
			[]string{`config: /etc/kurma/config.yaml:2: hostname: duplicate key (first at line 1); this one is ignored`}},
		{"unknown tag", "modules:\n  extra: !append [a]",
			[]string{`config: /etc/kurma/config.yaml:2: modules.extra: unknown tag !append (the one tag Kurma knows is !replace)`}},
		{"replace on a value", "hostname: !replace a",
			[]string{`config: /etc/kurma/config.yaml:1: hostname: !replace applies to a list or a mapping`}},
		{"alias cycle", "bootstrap: {containers: [{name: a, image: a, isolators: {a/b: &x {b: *x}}}]}",
			[]string{`config: /etc/kurma/config.yaml:1: bootstrap.containers[0].isolators["a/b"]: anchor 'x' value contains itself`}},
		{"empty list entry", "network:\n  dns:\n    servers:\n      -\n      - 1.1.1.1",
			[]string{`config: /etc/kurma/config.yaml:4: network.dns.servers[0]: empty entry`}},
		{"two documents", "hostname: a\n---\nhostname: b",
			[]string{`config: /etc/kurma/config.yaml:2: a second YAML document; only the first is read`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateBytes("/etc/kurma/config.yaml", []byte(tc.yaml))
			if got, want := errStrings(errs), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestBrokenLayerKeepsTheRest checks that the valid parts of a layer with
// errors apply, and that a layer that is not YAML leaves the others.
func TestBrokenLayerKeepsTheRest(t *testing.T) {
	l, errs := Parse(LayerInitrd, "config.yaml", []byte("hostname: kept\nnetwork:\n  dns:\n    servers: [bad, 1.1.1.1]\n  bogus: 1\n"))
	if len(errs) != 2 {
		t.Errorf("errors = %s, want two", errStrings(errs))
	}
	broken, errs := Parse(LayerOEM, "oem.yaml", []byte("hostname: [unclosed"))
	if len(errs) != 1 {
		t.Errorf("errors = %s, want one", errStrings(errs))
	}
	c := mergeOK(t, l, broken).Config
	if c.Hostname != "kept" || len(c.Network.DNS.Servers) != 1 || c.Network.DNS.Servers[0].String() != "1.1.1.1" {
		t.Errorf("config = %+v, want the valid values of the first layer", c)
	}
}

// TestAliasBomb checks that merge keys that expand exponentially are cut
// off by the bound on values.
func TestAliasBomb(t *testing.T) {
	doc := "bootstrap:\n  containers:\n    - &l0 {name: a, image: a}\n"
	for i := 1; i <= 7; i++ {
		doc += fmt.Sprintf("    - &l%d {<<: [%s], name: n%d}\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "), i)
	}
	_, errs := Parse(LayerInitrd, "bomb.yaml", []byte(doc))
	found := false
	for _, e := range errs {
		found = found || strings.Contains(e.Error(), "too many values")
	}
	if !found {
		t.Errorf("errors = %s, want too many values", errStrings(errs))
	}
}
