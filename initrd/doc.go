// Package initrd builds Kurma's initramfs: a newc cpio archive holding
// kurma as /init, the module profile's modules with their
// dependencies and a matching modules.dep, the base configuration and
// whatever else the image ships. Builds are reproducible: the same inputs
// give the same bytes (sorted entries, fixed times, owners and inodes).
package initrd
