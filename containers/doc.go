// Package containers holds Kurma's container runtime: the image store,
// pods and their stages, isolators, networking and the metadata service.
// It knows nothing of PID 1: it also runs as an ordinary daemon.
package containers
