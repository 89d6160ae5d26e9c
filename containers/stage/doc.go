// Package stage is the part of Kurma's pod runtime that runs inside a pod:
// the in-pod init (stage3 of DESIGN.md), started by the daemon through a
// re-execution of the kurma binary ("kurma stage-init") directly into the
// pod's new namespaces (mount, PID, UTS, IPC and, unless the pod uses the
// host's, network) and into the pod's cgroup. One process does what
// DESIGN.md calls stage2 and stage3: the kernel creates the namespaces and
// places the child in its cgroup as part of clone(2), so no intermediate
// process is needed.
//
// The in-pod init is the pod's PID 1 and its holder: it lives as long as
// the pod runs, independently of the daemon, which may be killed and
// restarted. It mounts the pod's /dev, /proc and /sys once. For each app
// it makes a mount namespace of its own on a locked OS thread
// (unshare(CLONE_FS|CLONE_NEWNS)), mounts the app's root filesystem
// (overlayfs of the image layers), the volumes and the pod's /dev, /proc
// and /sys inside it, pivot_roots that thread into it, resolves the app's
// user and group from the app's own /etc/passwd and /etc/group, runs the
// pre-start handlers to completion as root, and starts the app. A
// descriptor of each app's mount namespace is kept: post-stop handlers
// and enter requests run in it, from a fresh locked thread that joins it
// (unshare(CLONE_FS) then setns), so no setns ever happens in the daemon.
// It reaps every process of the pod, copies each app's stdout and stderr
// to a log file of bounded size, and writes the pod's status (status.json)
// behind every change, atomically. Once the pod runs quietly, it replaces
// itself with a fresh process of the same binary that holds less memory
// (see compact_linux.go).
//
// A pod may run in a user namespace of its own: the daemon makes it, with
// the UTS, IPC and network namespaces it owns (NewNamespaces), and the
// init, which stays the host's root, has every process of the apps join
// them (see userns_linux.go).
//
// # Protocol
//
// The daemon starts the init with a SOCK_SEQPACKET socket pair: its end is
// fd 3 of the init. Every message is one JSON object (Message), possibly
// carrying descriptors (SCM_RIGHTS):
//
//	daemon (pod.Manager)                         kurma stage-init (pod PID 1)
//	(user namespace: NewNamespaces first)
//	clone(NEWNS|NEWPID|NEWUTS|NEWIPC[|NEWNET],
//	      CLONE_INTO_CGROUP) + exec ───────────────▶ starts, fd 3 = socket
//	(cgroup v1: add the pid to the groups)
//	{type:"prepare", dir,        ─────────────────▶ mounts private; devpts, shm,
//	 ownNetwork[, idMap,                             /dev, /proc, /sys trees;
//	 namespaces, layers]}                            control socket; lo up
//	 + [namespace fds]                               and metadata listener
//	                                                 (own netns); the store
//	                                                 ID-mapped (user ns)
//	                             ◀───────────────── {type:"prepared"[, idMapped]}
//	        (a spare init waits here, ready, until a pod is created)
//	{type:"config", config}      ─────────────────▶ hostname, sysctls,
//	(writes pod.json, makes the                      log pipes
//	 writable layers and empty
//	 volumes meanwhile)
//	                             ◀───────────────── {type:"namespaces"} + [listener fd]
//	network hook on /proc/PID/ns/net (without a hook,
//	 "start" goes right after the config)
//	{type:"start"}               ─────────────────▶ per app: rootfs, mounts,
//	(serves metadata on the fd)
//	                                                 pivot_root, user, pre-start,
//	                                                 exec
//	                             ◀───────────────── {type:"running", pids}
//	                                                 or {type:"failed", error}
//	                                                 supervise ...
//	                             ◀───────────────── {type:"ended"}, then exit
//
// Everything after that goes through the pod's control socket,
// RUN/control (SOCK_SEQPACKET, mode 0600), one connection per request,
// so that a restarted daemon talks to the pod exactly as the one that
// created it did:
//
//	{op:"stop", grace}           ──▶  SIGTERM to each app, SIGKILL to the
//	                             ◀──  {}    pod after grace, post-stop, exit
//	{op:"enter", enter} + fds    ──▶  fds: stdin, stdout, stderr (no TTY)
//	                             ◀──  {pid} [+ pty master fd with a TTY]
//	                             ◀──  {exit}  when the process has exited
//	{op:"listener"}              ──▶
//	                             ◀──  {} + metadata listener fd (pod netns)
//
// The daemon learns that the pod has ended from "ended" on fd 3 or, once
// fd 3 is gone (a restarted daemon, a compacted init), from the init's
// exit (it waits on a pidfd after a restart), and reads the final status
// from status.json.
package stage
