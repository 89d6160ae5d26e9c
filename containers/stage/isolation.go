package stage

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"golang.org/x/sys/unix"
)

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
	Seccomp []Filter `json:"seccomp,omitempty"`
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
	// Mounts show groups inside the app: one at /sys/fs/cgroup, or
	// several below a tmpfs there (v1); read-only, but for the app's
	// v2 group when it is delegated to a pod in a user namespace.
	Mounts []Mount `json:"mounts,omitempty"`
	// OOMEvents is the file whose oom_kill counter says whether the
	// kernel killed a process of the app for want of memory
	// (memory.events for v2, memory.oom_control for v1).
	OOMEvents string `json:"oomEvents,omitempty"`
}

// Filter is a seccomp BPF program. In JSON it is the base64 of its
// instructions (the fields of struct sock_filter, 8 bytes each,
// little-endian): a fifth of the size of an object per instruction, and
// read many times faster by the init, for which a pod's config is on the
// way to its start.
type Filter []unix.SockFilter

const filterInsnSize = 8

// MarshalJSON encodes f as base64.
func (f Filter) MarshalJSON() ([]byte, error) {
	raw := make([]byte, 0, len(f)*filterInsnSize)
	for _, in := range f {
		raw = binary.LittleEndian.AppendUint16(raw, in.Code)
		raw = append(raw, in.Jt, in.Jf)
		raw = binary.LittleEndian.AppendUint32(raw, in.K)
	}
	return json.Marshal(raw)
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (f *Filter) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("seccomp filter: %w", err)
	}
	if len(raw)%filterInsnSize != 0 {
		return fmt.Errorf("seccomp filter: %d bytes is not whole instructions", len(raw))
	}
	out := make(Filter, len(raw)/filterInsnSize)
	for i := range out {
		b := raw[i*filterInsnSize:]
		out[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	*f = out
	return nil
}
