package rootfs

import (
	"fmt"
	"strings"
)

// Limits on names, as the kernel has them (PATH_MAX, NAME_MAX).
const (
	MaxNameLen      = 4095
	MaxComponentLen = 255
)

// NameError is returned for a name that may not be written into a root.
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("path %q: %s", truncate(e.Name), e.Reason)
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// Clean checks a name taken from untrusted input and returns it in
// canonical form: relative, without "." or empty components or a trailing
// slash. The root itself is "". Names that are absolute, contain "..", an
// empty component ("a//b"), a NUL byte, or are too long are refused with a
// *NameError.
func Clean(name string) (string, error) {
	switch {
	case strings.IndexByte(name, 0) >= 0:
		return "", &NameError{name, "contains a NUL byte"}
	case len(name) > MaxNameLen:
		return "", &NameError{name, fmt.Sprintf("longer than %d bytes", MaxNameLen)}
	case strings.HasPrefix(name, "/"):
		return "", &NameError{name, "is absolute"}
	}
	parts := strings.Split(name, "/")
	out := parts[:0]
	for i, p := range parts {
		switch {
		case p == "" && i > 0 && i < len(parts)-1:
			// "rootfs//etc/x": harmless here, but an absolute path
			// to anything that strips "rootfs/".
			return "", &NameError{name, "contains an empty component"}
		case p == "" || p == ".":
			continue
		case p == "..":
			return "", &NameError{name, `contains a ".." component`}
		case len(p) > MaxComponentLen:
			return "", &NameError{name, fmt.Sprintf("has a component longer than %d bytes", MaxComponentLen)}
		}
		out = append(out, p)
	}
	return strings.Join(out, "/"), nil
}

// checkLinkTarget checks the target of a symbolic link. Any target is
// allowed, absolute or with "..": it is only ever resolved inside a root.
func checkLinkTarget(name, target string) error {
	switch {
	case target == "":
		return &NameError{name, "is a symlink with an empty target"}
	case strings.IndexByte(target, 0) >= 0:
		return &NameError{name, "is a symlink whose target contains a NUL byte"}
	case len(target) > MaxNameLen:
		return &NameError{name, fmt.Sprintf("is a symlink whose target is longer than %d bytes", MaxNameLen)}
	}
	return nil
}
