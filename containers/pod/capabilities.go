package pod

import (
	"fmt"
	"slices"
	"strings"
)

// capabilityNames are the Linux capabilities by number.
var capabilityNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities are the appc spec's default set (ace.md): what an
// app has without a capability isolator.
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
	"CAP_KILL", "CAP_MKNOD", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_SETUID",
	"CAP_SETGID", "CAP_SETPCAP", "CAP_SETFCAP", "CAP_SYS_CHROOT",
}

// capSet is a set of capabilities by number.
type capSet map[int]bool

// parseCaps reads capability names ("CAP_NET_ADMIN", or "NET_ADMIN").
func parseCaps(names []string) (capSet, error) {
	s := capSet{}
	for _, n := range names {
		full := n
		if !strings.HasPrefix(full, "CAP_") {
			full = "CAP_" + full
		}
		i := slices.Index(capabilityNames, full)
		if i < 0 {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		s[i] = true
	}
	return s, nil
}

func allCaps() capSet {
	s := capSet{}
	for i := range capabilityNames {
		s[i] = true
	}
	return s
}

func (s capSet) minus(o capSet) capSet {
	r := capSet{}
	for c := range s {
		if !o[c] {
			r[c] = true
		}
	}
	return r
}

func (s capSet) and(o capSet) capSet {
	r := capSet{}
	for c := range s {
		if o[c] {
			r[c] = true
		}
	}
	return r
}

func (s capSet) numbers() []int {
	var n []int
	for c := range s {
		n = append(n, c)
	}
	slices.Sort(n)
	return n
}

func (s capSet) String() string {
	var names []string
	for _, c := range s.numbers() {
		names = append(names, capabilityNames[c])
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, " ")
}
