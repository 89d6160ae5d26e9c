// Package bootstrap launches what a Kurma machine runs before anyone asks
// for anything: the bootstrap containers of the configuration and the
// services Kurma defines itself (the console). Run-to-completion
// containers run first, in order, each waited for; an essential one that
// fails stops the boot. Services start after them and are started again,
// with exponential backoff, when they end.
//
// It runs in PID 1 (package boot) and drives the container runtime
// through its API (Runtime; DialAPI for the local socket). PID 1 outlives
// the runtime's daemon, so the daemon can restart without losing the
// supervision: backoffs and waits go on in PID 1, pods keep running in
// the meantime, and the daemon counts the restarts of a service's pod
// itself (CreatePodRequest.replace), where `kurma list` shows them.
package bootstrap
