// Package kernel reads Linux kernel images at build time: the boot
// protocol header of a bzImage, and the uncompressed vmlinux inside it
// (booted by QEMU through its PVH entry, which skips the decompressor).
package kernel
