package config

// Services configures the host services.
type Services struct {
	Console Console `yaml:"console"`
	NTP     NTP     `yaml:"ntp"`
	Devices Devices `yaml:"devices"`
}

// Console is the login service on the console and over SSH.
type Console struct {
	// Enabled starts the console service.
	Enabled bool `yaml:"enabled"`
	// Password is a crypt(3) hash (yescrypt "$y$…", SHA-512 "$6$…",
	// SHA-256 "$5$…" or bcrypt "$2b$…", the methods the console checks)
	// for console login, or "none": no password login.
	Password string `yaml:"password" kurma:"check=password"`
	// SSHAuthorizedKeys are OpenSSH public keys allowed to log in. Later
	// layers add to the list.
	SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys" kurma:"append,check=sshkey"`
	// SSHPort is the port the SSH server listens on.
	SSHPort int `yaml:"ssh_port" kurma:"check=port"`
}

// NTP sets the clock from time servers.
type NTP struct {
	Enabled bool `yaml:"enabled"`
	// Servers are host names or addresses of NTP servers, each with an
	// optional :port (123 by default).
	Servers []string `yaml:"servers" kurma:"check=server"`
}

// Devices is the device manager: it creates device nodes and loads
// modules for hardware that appears after boot.
type Devices struct {
	Enabled bool `yaml:"enabled"`
}
