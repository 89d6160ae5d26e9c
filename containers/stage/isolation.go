package stage

import "golang.org/x/sys/unix"

// Isolation confines an app's processes: the app, its event handlers and
// the commands entered in it. The daemon resolves the pod's and the
// app's isolators into it; the init applies it in each process between
// fork and exec (see forkExec).
type Isolation struct {
	// Capabilities are the numbers of the capabilities kept in the
	// bounding, effective and permitted sets (CAP_CHOWN is 0); the
	// inheritable and ambient sets are empty. At execve the kernel
	// gives a non-root user none of them (no file capabilities) and root
	// the bounding set.
	Capabilities []int `json:"capabilities"`
	// AllCapabilities keeps every capability the kernel has
	// (host/privileged).
	AllCapabilities bool `json:"allCapabilities,omitempty"`
	// NoNewPrivileges sets no_new_privs: setuid bits and file
	// capabilities no longer give privileges.
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// Seccomp filters are installed in order; a system call gets the
	// strictest of their answers.
	Seccomp [][]unix.SockFilter `json:"seccomp,omitempty"`
	// OOMScoreAdj is written to /proc/self/oom_score_adj when set.
	OOMScoreAdj *int `json:"oomScoreAdj,omitempty"`
}

// AppCgroup places an app's processes in the app's control groups and
// shows them to the app.
type AppCgroup struct {
	// V2 is the app's group in the v2 hierarchy: processes are cloned
	// into it (CLONE_INTO_CGROUP). Empty: they stay in the init's.
	V2 string `json:"v2,omitempty"`
	// V1 are the app's groups in v1 hierarchies, joined by each process
	// before it execs.
	V1 []string `json:"v1,omitempty"`
	// Mounts show groups read-only inside the app: one at
	// /sys/fs/cgroup, or several below a tmpfs there (v1).
	Mounts []Mount `json:"mounts,omitempty"`
	// OOMEvents is the file whose oom_kill counter says whether the
	// kernel killed a process of the app for want of memory
	// (memory.events for v2, memory.oom_control for v1).
	OOMEvents string `json:"oomEvents,omitempty"`
}
