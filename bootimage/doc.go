// Package bootimage makes Kurma's boot media from a kernel (bzImage), an
// initramfs and a kernel command line:
//
//   - an ISO 9660 image that boots from a CD-ROM and, written to a USB
//     stick, from its partition table (isohybrid), under BIOS (isolinux)
//     and UEFI (GRUB), with the command line editable at a boot menu;
//   - a GPT disk image (raw, and qcow2 through qemu-img) whose EFI system
//     partition holds the kernel once for both syslinux (BIOS, through
//     gptmbr) and GRUB (UEFI), and an optional blank data partition named
//     KURMA_DATA for Kurma's disk configuration to claim;
//   - a Unified Kernel Image: systemd's EFI stub with the kernel, initrd,
//     command line and os-release as PE sections, written in Go;
//   - a PXE tree: the kernel, initrd and an iPXE script, for TFTP or HTTP.
//
// It is build-time tooling: the OS binary links none of it. The external
// tools (xorriso, mtools, syslinux, grub-mkimage, qemu-img) come from
// Debian's packages, installed by scripts/setup; none needs root or loop
// devices. Outputs are reproducible: given the same inputs and the same
// Epoch, every byte is the same (file times come from Epoch, through
// SOURCE_DATE_EPOCH for the tools; volume serials, UUIDs and GUIDs are
// fixed).
package bootimage
