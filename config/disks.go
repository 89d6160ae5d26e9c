package config

// Disk is a block device Kurma uses. Exactly one of Path, Label and UUID
// names the device.
type Disk struct {
	// Path is a device path ("/dev/vda") or a glob ("/dev/sd?"); a glob
	// takes the first device, in name order, that matches.
	Path string `yaml:"path" kurma:"check=devpath"`
	// Label is the filesystem label.
	Label string `yaml:"label" kurma:"check=label"`
	// UUID is the filesystem UUID.
	UUID string `yaml:"uuid" kurma:"check=uuid"`
	// Filesystem is the filesystem type, used to format and to mount.
	Filesystem string `yaml:"filesystem" kurma:"enum=ext4|xfs|vfat"`
	// Format says when the disk is formatted.
	Format FormatPolicy `yaml:"format" kurma:"enum=never|if-blank|force"`
	// Resize grows the filesystem to the size of the device.
	Resize bool `yaml:"resize"`
	// Usages are the parts of /var/lib/kurma stored on this disk. Each
	// usage is on one disk at most.
	Usages []Usage `yaml:"usages" kurma:"enum=images|pods|volumes|logs"`
}

// FormatPolicy says when a disk is formatted.
type FormatPolicy string

// The format policies.
const (
	// FormatNever never formats: the disk must hold a filesystem.
	FormatNever FormatPolicy = "never"
	// FormatIfBlank formats a disk that holds no filesystem signature.
	FormatIfBlank FormatPolicy = "if-blank"
	// FormatForce formats the disk at every boot.
	FormatForce FormatPolicy = "force"
)

// Usage is a part of /var/lib/kurma that a disk can hold.
type Usage string

// The usages.
const (
	UsageImages  Usage = "images"
	UsagePods    Usage = "pods"
	UsageVolumes Usage = "volumes"
	UsageLogs    Usage = "logs"
)
