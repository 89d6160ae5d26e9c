package config

// Config is Kurma's effective configuration: every phase of the boot reads
// its part of it. The YAML keys are the ones documented in docs/config.md.
//
// The struct tag `kurma` carries what the YAML tag cannot:
//
//	append     a list that later layers extend instead of replacing
//	key=FIELD  a list of named entries that later layers merge by FIELD
//	check=NAME the value (or each element, or each map value) must pass
//	           the named check (see checks.go)
//	keycheck=NAME each key of a map must pass the named check
//	enum=A|B   the value must be one of the listed words
//	required   a list entry without this field is dropped
type Config struct {
	// Hostname of the machine, set in the host phase.
	Hostname string `yaml:"hostname" kurma:"check=hostname"`
	// Debug turns on verbose logging of the boot and the runtime.
	Debug bool `yaml:"debug"`
	// Shutdown is what ctrl-alt-del and SIGTERM to PID 1 do.
	Shutdown string `yaml:"shutdown" kurma:"enum=reboot|poweroff|halt"`
	// Network configures interfaces, DNS and the proxy.
	Network Network `yaml:"network"`
	// Disks lists the block devices Kurma formats, mounts and uses.
	Disks []Disk `yaml:"disks"`
	// Modules selects the kernel modules loaded at boot.
	Modules Modules `yaml:"modules"`
	// Bootstrap lists the containers started at the end of the boot.
	Bootstrap Bootstrap `yaml:"bootstrap"`
	// Services configures the host services: console, NTP, devices.
	Services Services `yaml:"services"`
	// API configures the local socket and the remote listener.
	API API `yaml:"api"`
	// Images configures where images may come from and how they are
	// verified.
	Images Images `yaml:"images"`
	// Pods configures the pod runtime: what is kept from pods.
	Pods Pods `yaml:"pods"`
	// Datasources lists, in order, the places more configuration is read
	// from once the local layers are merged.
	Datasources []Datasource `yaml:"datasources" kurma:"key=name|kind"`
	// Sysctls are written to /proc/sys in the host phase: the key
	// "net.ipv4.ip_forward" is /proc/sys/net/ipv4/ip_forward.
	Sysctls map[string]string `yaml:"sysctls" kurma:"keycheck=sysctl"`
}
