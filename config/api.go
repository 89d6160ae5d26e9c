package config

// API configures where the kurma.v1 API is served.
type API struct {
	// Socket is the path of the local unix socket.
	Socket string `yaml:"socket" kurma:"check=abspath"`
	// SocketGroup owns the socket (mode 0660): a group name or number.
	SocketGroup string `yaml:"socket_group" kurma:"check=group"`
	// Remote is the TCP listener; it is off unless Address is set.
	Remote Remote `yaml:"remote"`
}

// Remote is the TCP listener of the API. It always requires mutual TLS.
type Remote struct {
	// Address is "host:port" or ":port".
	Address string `yaml:"address" kurma:"check=hostport"`
	// TLS is the listener's certificate and the CA clients must be
	// signed by.
	TLS TLS `yaml:"tls"`
}

// TLS names PEM files.
type TLS struct {
	Cert string `yaml:"cert" kurma:"check=abspath"`
	Key  string `yaml:"key" kurma:"check=abspath"`
	CA   string `yaml:"ca" kurma:"check=abspath"`
}
