// Package kmod is Kurma's kernel module support: the environment profiles
// (which modules an image ships and loads), the index of a module tree
// (modules.dep, modules.alias, modules.builtin), and the loader that
// inserts modules with their dependencies through finit_module(2).
//
// The directory is kernel-modules/ as in the design; the package is kmod.
package kmod
