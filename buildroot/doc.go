// Package buildroot assembles the userland trees Kurma ships: the tools
// the initrd needs (mke2fs, resize2fs) and the root filesystems of the
// system images. A recipe names Debian packages, which are downloaded
// with `apt-get download` and unpacked (never installed on the build
// host), the binaries to take from them, whose shared libraries are found
// from their ELF headers and copied along, more files, and Go programs to
// build. The result is a directory tree, or an ACI packed reproducibly:
// the same inputs give the same bytes.
//
// It is build-time tooling: the OS binary links none of it.
package buildroot
