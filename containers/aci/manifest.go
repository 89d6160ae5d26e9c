package aci

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"runtime"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// ErrNoManifest is returned for an archive without a manifest file.
var ErrNoManifest = errors.New("the archive has no manifest")

// ManifestError is a manifest that does not follow the appc schema.
type ManifestError struct {
	Err error
}

func (e *ManifestError) Error() string { return "invalid image manifest: " + e.Err.Error() }
func (e *ManifestError) Unwrap() error { return e.Err }

// ParseManifest decodes and validates an image manifest. The caller caps
// the size of data. Validation is the appc schema's (kind, version, name,
// labels and their os/arch pairs, app, dependencies, annotations) plus the
// pathWhitelist, whose entries must be clean absolute paths.
func ParseManifest(data []byte) (*schema.ImageManifest, error) {
	var m schema.ImageManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &ManifestError{err}
	}
	for _, p := range m.PathWhitelist {
		if !path.IsAbs(p) || strings.IndexByte(p, 0) >= 0 || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
			return nil, &ManifestError{fmt.Errorf("pathWhitelist entry %q is not a clean absolute path", p)}
		}
	}
	return &m, nil
}

// PlatformError is an image built for another operating system or
// architecture than the one it would run on.
type PlatformError struct {
	Label, Image, Host string
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("image is for %s %q but this host is %q", e.Label, e.Image, e.Host)
}

// CheckPlatform checks the image's os and arch labels against a Go
// GOOS/GOARCH pair. A missing label means the image does not depend on it.
func CheckPlatform(m *schema.ImageManifest, goos, goarch string) error {
	appcOS, appcArch, err := types.ToAppcOSArch(goos, goarch, goarm())
	if err != nil {
		return fmt.Errorf("host platform: %w", err)
	}
	if os, ok := m.GetLabel("os"); ok && os != appcOS {
		return &PlatformError{"os", os, appcOS}
	}
	if arch, ok := m.GetLabel("arch"); ok && arch != appcArch {
		return &PlatformError{"arch", arch, appcArch}
	}
	return nil
}

// HostPlatform is this host's os and arch in appc's names.
func HostPlatform() (os, arch string, err error) {
	return types.ToAppcOSArch(runtime.GOOS, runtime.GOARCH, goarm())
}

// HostCheck checks that an image can run on this host (see CheckPlatform).
func HostCheck(m *schema.ImageManifest) error {
	return CheckPlatform(m, runtime.GOOS, runtime.GOARCH)
}

// goarm is the ARM flavour appc's table wants ("7" for armv7l); it only
// matters on 32-bit ARM, where it defaults to 7.
func goarm() string {
	if runtime.GOARCH == "arm" {
		return "7"
	}
	return ""
}

// HasPrefix reports whether an image name is under a name prefix, at a
// path boundary: "example.com/app" is under "example.com" and
// "example.com/app" but not under "example.com/ap". The prefix "*" holds
// every name.
func HasPrefix(name, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return prefix == "*" || name == prefix || strings.HasPrefix(name, prefix+"/")
}

// LabelsMatch reports whether an image has the wanted labels. A version
// of "latest" (or empty) matches any version; an image without an os or
// arch label matches any os or arch, since it does not depend on them.
func LabelsMatch(m *schema.ImageManifest, want types.Labels) bool {
	for _, l := range want {
		n := l.Name.String()
		if n == "version" && (l.Value == "" || l.Value == "latest") {
			continue
		}
		v, ok := m.GetLabel(n)
		if !ok && (n == "os" || n == "arch") {
			continue
		}
		if !ok || v != l.Value {
			return false
		}
	}
	return true
}
