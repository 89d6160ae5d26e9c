package config

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/kurmaos/kurma/config/datasource"
)

// A check validates one value and returns it normalised. Its error is the
// message shown after the field path, so it quotes the value and says what
// is expected.
type check func(s string) (string, error)

// checks are the values of the `check=` and `keycheck=` tags.
var checks = map[string]check{
	"hostname":    checkHostname,
	"host":        checkHost,
	"hostport":    checkHostPort,
	"server":      checkServer,
	"glob":        checkGlob,
	"mac":         checkMAC,
	"proxyurl":    checkProxyURL,
	"devpath":     checkDevPath,
	"label":       checkLabel,
	"uuid":        checkUUID,
	"name":        pattern(`^[a-z0-9][a-z0-9._-]{0,62}$`, "a name (lowercase letters, digits, '.', '_' and '-', at most 63)"),
	"podname":     pattern(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`, "a pod name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)"),
	"module":      pattern(`^[A-Za-z0-9_-]{1,55}$`, "a module name (letters, digits, '_' and '-')"),
	"envname":     pattern(`^[A-Za-z_][A-Za-z0-9_]*$`, "an environment variable name"),
	"acname":      pattern(`^[a-z0-9]+([-._~/][a-z0-9]+)*$`, "an appc identifier (lowercase letters, digits and -._~/ between them)"),
	"group":       pattern(`^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})$`, "a group name or number"),
	"sysctl":      pattern(`^[a-z0-9_*-]+([./][a-z0-9_*-]+)*$`, "a sysctl name (net.ipv4.ip_forward)"),
	"imageprefix": pattern(`^(\*|[a-z0-9][a-z0-9._~/-]*)$`, `an image name prefix ("example.com/") or "*"`),
	"image":       checkImage,
	"abspath":     checkAbsPath,
	"mode":        checkMode,
	"password":    checkPassword,
	"sshkey":      checkSSHKey,
	"port":        checkPort,
	"mtu":         checkMTU,
	"urltemplate": checkURLTemplate,
}

func pattern(re, what string) check {
	rx := regexp.MustCompile(re)
	return func(s string) (string, error) {
		if !rx.MatchString(s) {
			return "", fmt.Errorf("%q is not %s", s, what)
		}
		return s, nil
	}
}

var hostLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func checkHostname(s string) (string, error) {
	bad := fmt.Errorf("%q is not a valid hostname (labels of letters, digits and '-' separated by dots)", s)
	h := strings.TrimSuffix(s, ".")
	if h == "" || len(h) > 253 {
		return "", bad
	}
	for _, l := range strings.Split(h, ".") {
		if !hostLabel.MatchString(l) {
			return "", bad
		}
	}
	return s, nil
}

func checkHost(s string) (string, error) {
	if _, err := netip.ParseAddr(s); err == nil {
		return s, nil
	}
	if _, err := checkHostname(s); err != nil {
		return "", fmt.Errorf("%q is not a host name or IP address", s)
	}
	return s, nil
}

func checkHostPort(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an address host:port (or :port)", s)
	}
	if _, err := checkPort(port); err != nil {
		return "", fmt.Errorf("%q has a bad port: %v", s, err)
	}
	if host != "" {
		if _, err := checkHost(host); err != nil {
			return "", err
		}
	}
	return s, nil
}

// checkServer accepts a host, or a host with a port (host:port,
// [v6]:port).
func checkServer(s string) (string, error) {
	if _, err := checkHost(s); err == nil {
		return s, nil
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", fmt.Errorf("%q is not a host name or IP address, with an optional :port", s)
	}
	return checkHostPort(s)
}

func checkGlob(s string) (string, error) {
	if s == "" || strings.ContainsAny(s, "/ \t") {
		return "", fmt.Errorf("%q is not an interface name or glob", s)
	}
	if _, err := path.Match(s, ""); err != nil {
		return "", fmt.Errorf("%q is not a valid glob", s)
	}
	return s, nil
}

func checkMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a MAC address (52:54:00:12:34:56)", s)
	}
	return hw.String(), nil
}

func checkProxyURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
		return "", fmt.Errorf("%q is not a proxy URL (http://host:port)", s)
	}
	return s, nil
}

func checkDevPath(s string) (string, error) {
	if !strings.HasPrefix(s, "/dev/") || path.Clean(s) != s {
		return "", fmt.Errorf("%q is not a device path under /dev/", s)
	}
	if _, err := path.Match(s, ""); err != nil {
		return "", fmt.Errorf("%q is not a valid glob", s)
	}
	return s, nil
}

func checkLabel(s string) (string, error) {
	if s == "" || len(s) > 255 || strings.ContainsRune(s, '/') || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("%q is not a filesystem label", s)
	}
	return s, nil
}

var uuidRx = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{4}-[0-9a-f]{4}|[0-9a-f]{16})$`)

func checkUUID(s string) (string, error) {
	l := strings.ToLower(s)
	if !uuidRx.MatchString(l) {
		return "", fmt.Errorf("%q is not a filesystem UUID (8-4-4-4-12 hex digits, or XXXX-XXXX)", s)
	}
	return l, nil
}

func checkImage(s string) (string, error) {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", fmt.Errorf("%q is not an image name, URL or path", s)
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("%q is not an http or https URL", s)
		}
	}
	return s, nil
}

func checkAbsPath(s string) (string, error) {
	if !strings.HasPrefix(s, "/") || strings.ContainsRune(s, 0) || path.Clean(s) != s {
		return "", fmt.Errorf("%q is not a clean absolute path", s)
	}
	return s, nil
}

func checkMode(s string) (string, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return "", fmt.Errorf("%q is not an octal file mode (0644)", s)
	}
	return fmt.Sprintf("%04o", n), nil
}

func checkPassword(s string) (string, error) {
	if s == "none" {
		return s, nil
	}
	// The methods the console checks (bootstrap/console/crypt).
	for _, p := range []string{"$y$", "$6$", "$5$", "$2b$", "$2a$", "$2y$"} {
		if strings.HasPrefix(s, p) && len(s) > len(p)+8 {
			return s, nil
		}
	}
	if strings.HasPrefix(s, "$") {
		return "", fmt.Errorf("the value (not shown) is a crypt(3) hash of a method the console does not check: use yescrypt (\"$y$…\", mkpasswd -m yescrypt), SHA-512 (\"$6$…\", mkpasswd -m sha-512), SHA-256 (\"$5$…\") or bcrypt (\"$2b$…\"), or none")
	}
	return "", fmt.Errorf("the value (not shown) is not a crypt(3) hash (\"$y$…\": mkpasswd -m yescrypt) or none")
}

var sshKeyTypes = map[string]bool{
	"ssh-ed25519": true, "ssh-rsa": true, "ecdsa-sha2-nistp256": true,
	"ecdsa-sha2-nistp384": true, "ecdsa-sha2-nistp521": true,
	"sk-ssh-ed25519@openssh.com": true, "sk-ecdsa-sha2-nistp256@openssh.com": true,
}

// checkSSHKey accepts an authorized_keys line: options, a key type, the
// base64 key blob (which names the same type) and a comment.
func checkSSHKey(s string) (string, error) {
	fields := strings.Fields(s)
	for i, f := range fields {
		if !sshKeyTypes[f] || i+1 >= len(fields) {
			continue
		}
		blob, err := base64.StdEncoding.DecodeString(fields[i+1])
		if err != nil || len(blob) < 4 {
			break
		}
		n := binary.BigEndian.Uint32(blob)
		if uint64(n) <= uint64(len(blob)-4) && bytes.Equal(blob[4:4+n], []byte(f)) {
			return s, nil
		}
		break
	}
	short := s
	if len(short) > 40 {
		short = short[:40] + "…"
	}
	return "", fmt.Errorf("%q is not an OpenSSH public key (ssh-ed25519 AAAA… comment)", short)
}

func checkPort(s string) (string, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return s, nil
}

func checkMTU(s string) (string, error) {
	n, err := strconv.Atoi(s)
	if err != nil || (n != 0 && (n < 68 || n > 65535)) {
		return "", fmt.Errorf("%q is not an MTU (68-65535, or 0 for the driver's)", s)
	}
	return s, nil
}

// checkURLTemplate accepts an http or https URL once its variables are
// substituted.
func checkURLTemplate(s string) (string, error) {
	vars := datasource.Vars{"mac": "52:54:00:12:34:56", "uuid": "00000000-0000-0000-0000-000000000000", "hostname": "kurma"}
	u, err := datasource.Substitute(s, vars)
	if err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("%q is not an http or https URL", s)
	}
	return s, nil
}
