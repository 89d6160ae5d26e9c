package boot

import (
	"os"
	"strings"
)

// Cmdline holds the kernel command line's kurma.* parameters.
type Cmdline map[string]string

// ReadCmdline reads /proc/cmdline.
func ReadCmdline() Cmdline {
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return Cmdline{}
	}
	return ParseCmdline(string(data))
}

// ParseCmdline reads the kurma.* parameters of a kernel command line. A
// value may be double-quoted as the kernel allows (kurma.x="a b"); a
// parameter without a value is "1"; a repeated one takes its last value.
func ParseCmdline(s string) Cmdline {
	c := Cmdline{}
	for _, f := range splitCmdline(s) {
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			value = "1"
		}
		if strings.HasPrefix(key, "kurma.") {
			c[key] = value
		}
	}
	return c
}

// splitCmdline splits at spaces outside double quotes and drops the
// quotes, as the kernel's next_arg does.
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			any = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// Bool reads a boolean parameter: 1, true, yes or on.
func (c Cmdline) Bool(key string) bool {
	switch strings.ToLower(c[key]) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func splitFields(s string) []string { return strings.Fields(s) }
