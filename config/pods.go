package config

// Pods configures the pod runtime.
type Pods struct {
	// Reserved is kept from pods for the system: what pods may request
	// is the machine's CPU and memory less it.
	Reserved Reserved `yaml:"reserved"`
	// Network is the network of the pods that do not share the host's.
	Network PodNetwork `yaml:"network"`
	// UserNamespaces is where pods in user namespaces get their IDs.
	UserNamespaces UserNamespaces `yaml:"user_namespaces"`
}

// UserNamespaces is the pool of host IDs of pods in user namespaces
// (os/linux/namespaces, user: child): each such pod holds one range of
// 65536 user and group IDs, from its creation until it is removed.
type UserNamespaces struct {
	// FirstID is the first host ID of the pool, 65536 or more (IDs
	// below are the host's own users).
	FirstID int `yaml:"first_id"`
	// Ranges is how many ranges of 65536 IDs the pool has, so how many
	// pods in user namespaces may exist at once; 0 refuses them.
	Ranges int `yaml:"ranges"`
}

// Reserved is CPU and memory kept from pods.
type Reserved struct {
	// CPUMillicores is thousandths of a CPU (1000 is one).
	CPUMillicores int      `yaml:"cpu_millicores"`
	Memory        ByteSize `yaml:"memory"`
}
