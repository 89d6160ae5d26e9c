package config

// Modules selects the kernel modules loaded in the modules phase.
type Modules struct {
	// Profile names the environment profile of kernel-modules/ ("qemu",
	// "metal"); empty means the profile the image was built with.
	Profile string `yaml:"profile" kurma:"check=name"`
	// Extra are modules loaded after the profile's, with their
	// dependencies. Later layers add to the list.
	Extra []string `yaml:"extra" kurma:"append,check=module"`
	// Parameters are module parameters by module, then by parameter:
	// {e1000: {copybreak: "0"}}.
	Parameters map[string]map[string]string `yaml:"parameters" kurma:"keycheck=module"`
}
