// Package image is Kurma's image store: App Container Images (ACIs)
// imported, checked and kept by ID, found by name and labels, rendered
// into root filesystems for pods, and collected when no pod needs them.
//
// Open a store on a directory (/var/lib/kurma/images on the OS):
//
//	s, err := image.Open(dir, image.Options{InUse: pods.ImagesInUse, Fetcher: f})
//
// Getting images in:
//
//	s.Import(ctx, r, image.ImportOptions{})        // an ACI stream (API upload)
//	s.ImportFile(ctx, path, image.ImportOptions{}) // a local file, trusted
//	s.ImportDir(ctx, dir)                          // images shipped with the OS
//	s.Fetch(ctx, ref, fetch.Options{})             // file, URL or name, signed, with dependencies
//
// Finding them: Get (by ID or unique ID prefix), Find (by name and
// labels, the latest version by default), List. Removing them: Remove
// (refused while a pod uses the image) and GC.
//
// Giving them to pods: Layers resolves dependencies in the spec's order;
// Lowers gives the directories to stack with MountOverlay, so that one
// copy of each image serves every pod; Tree gives a rendered, shared
// read-only tree where stacking cannot give the spec's result
// (pathWhitelist); Render copies a root filesystem into a directory of
// the caller's.
//
// Every import is hostile-input handling: see packages aci and rootfs.
// The on-disk layout is described on Store and in docs/images.md.
package image
