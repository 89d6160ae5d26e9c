package config

// Pods configures the pod runtime.
type Pods struct {
	// Reserved is kept from pods for the system: what pods may request
	// is the machine's CPU and memory less it.
	Reserved Reserved `yaml:"reserved"`
}

// Reserved is CPU and memory kept from pods.
type Reserved struct {
	// CPUMillicores is thousandths of a CPU (1000 is one).
	CPUMillicores int      `yaml:"cpu_millicores"`
	Memory        ByteSize `yaml:"memory"`
}
