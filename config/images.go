package config

// Images configures image retrieval and verification.
type Images struct {
	// Allow is the whitelist of sources. With both lists empty every
	// source is allowed.
	Allow Allow `yaml:"allow"`
	// TrustedKeys maps an image name prefix ("example.com/", or "*" for
	// every image) to the armored OpenPGP public key files that may sign
	// images under it.
	TrustedKeys map[string][]string `yaml:"trusted_keys" kurma:"keycheck=imageprefix,check=abspath"`
	// Insecure turns off checks, for development.
	Insecure Insecure `yaml:"insecure"`
	// OfflineDirs are directories of .aci files (with their .asc
	// signatures) used before the network. Later layers add to the list.
	OfflineDirs []string `yaml:"offline_dirs" kurma:"append,check=abspath"`
	// Limits bound what one image may take.
	Limits Limits `yaml:"limits"`
}

// Allow is a whitelist of image sources.
type Allow struct {
	// Names are image name prefixes, "example.com/", "coreos.com/etcd".
	Names []string `yaml:"names"`
	// Hosts are host names an image may be fetched from (discovery
	// endpoints and URLs), "images.example.com".
	Hosts []string `yaml:"hosts" kurma:"check=host"`
}

// Insecure options turn off verification. Each is reported at boot.
type Insecure struct {
	// AllowHTTP allows fetching over plain HTTP.
	AllowHTTP bool `yaml:"allow_http"`
	// SkipSignature accepts images without a valid signature.
	SkipSignature bool `yaml:"skip_signature"`
	// SkipTLSVerify accepts any TLS certificate.
	SkipTLSVerify bool `yaml:"skip_tls_verify"`
}

// Limits bound the size of one image.
type Limits struct {
	// Download bounds the bytes fetched for one image.
	Download ByteSize `yaml:"download"`
	// Unpacked bounds the uncompressed size of one image.
	Unpacked ByteSize `yaml:"unpacked"`
}
