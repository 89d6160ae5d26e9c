// Package netboot serves a PXE tree (make pxe) to the machines of a lab:
// a read-only TFTP server (RFC 1350, with the blksize, tsize and timeout
// options of RFCs 2347–2349, which PXE ROMs and iPXE use) and an HTTP
// file server, both confined to the tree. The DHCP side is left to the
// network's DHCP server or dnsmasq (docs/booting.md).
//
// It is lab tooling run by kurma-build serve-pxe: the OS binary links
// none of it.
package netboot
