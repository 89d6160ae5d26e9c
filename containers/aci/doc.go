// Package aci reads App Container Images: the archive (a tar file,
// optionally compressed with gzip, bzip2 or xz), its manifest, and its
// root filesystem.
//
// Everything in an ACI is untrusted. Unpack streams the archive once: it
// decompresses with bounded memory, counts and caps the uncompressed bytes
// and the number of entries, hashes the exact uncompressed stream into the
// image ID ("sha512-" and the hex SHA-512, as appc defines it), reads the
// manifest with a size cap before decoding it, validates it with the appc
// schema types, and writes the rootfs/ entries through package rootfs, so
// that no entry can land outside the destination directory.
//
//	res, err := aci.Unpack(ctx, r, dir, aci.Options{Check: aci.HostCheck})
//	// res.ID, res.Manifest, res.Size
//
// No external program is run: the decompressors are Go code.
package aci
