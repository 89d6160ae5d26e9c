package config

// Pods configures the pod runtime.
type Pods struct {
	// Reserved is kept from pods for the system: what pods may request
	// is the machine's CPU and memory less it.
	Reserved Reserved `yaml:"reserved"`
	// Network is the network of the pods that do not share the host's.
	Network PodNetwork `yaml:"network"`
}

// Reserved is CPU and memory kept from pods.
type Reserved struct {
	// CPUMillicores is thousandths of a CPU (1000 is one).
	CPUMillicores int      `yaml:"cpu_millicores"`
	Memory        ByteSize `yaml:"memory"`
}
