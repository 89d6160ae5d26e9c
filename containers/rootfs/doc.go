// Package rootfs writes files into a directory tree that must contain them:
// the root filesystem of an image or a pod. Every name it is given is
// treated as hostile. Names are checked (no "..", no absolute paths, no NUL,
// bounded lengths), parent directories are resolved by the kernel beneath
// the root without following any symlink (openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS), so an entry whose path goes through a symlink is
// refused with ErrThroughSymlink, and the last component of a name is never
// followed: whatever is there is replaced, as the appc rendering rules
// require. Symlinks themselves may point anywhere: they are data, only ever
// resolved later inside the container's root.
//
// A Root is the only way in:
//
//	r, err := rootfs.Open(dir, rootfs.Options{})
//	err = r.Create(hdr, body) // hdr is an archive/tar header, Name relative to dir
//	err = r.Close()           // applies directory modes and times
//
// Ownership and setuid/setgid bits are kept as given when the process may
// set them (it is root); otherwise files belong to the caller and
// setuid/setgid bits are dropped, and directories keep the owner's rwx so
// that the tree can be written to and removed. Device nodes follow the
// DevicePolicy. Extended attributes are not written.
package rootfs
