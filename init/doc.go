// Package boot is Kurma's PID 1: the boot sequence of named phases that
// brings the machine up, its reaper, signal handling and shutdown.
//
// The directory is init/ as in the design; Go forbids a package named
// init, so the package is called boot.
package boot
