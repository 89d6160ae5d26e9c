package buildroot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A Package is a downloaded and unpacked Debian package.
type Package struct {
	Name    string
	Version string
	Deb     string // the .deb file
	Dir     string // where it is unpacked
}

// FetchPackages downloads the packages' candidate versions with `apt-get
// download` into cache (once) and unpacks each into its own directory
// there. Nothing is installed on the build host.
func FetchPackages(ctx context.Context, cache string, names []string) ([]Package, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	var pkgs []Package
	for _, name := range names {
		version, err := candidate(ctx, name)
		if err != nil {
			return nil, err
		}
		p, err := fetchOne(ctx, cache, name, version)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// candidate asks apt which version `apt-get download` would fetch.
func candidate(ctx context.Context, name string) (string, error) {
	out, err := run(ctx, "", "apt-cache", "policy", name)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "" || v == "(none)" {
				break
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("debian package %s: apt knows no version of it (run apt-get update, or check the name)", name)
}

func fetchOne(ctx context.Context, cache, name, version string) (Package, error) {
	// apt names files with the epoch's colon escaped as %3a.
	file := fmt.Sprintf("%s_%s_", name, strings.ReplaceAll(version, ":", "%3a"))
	matches, _ := filepath.Glob(filepath.Join(cache, file+"*.deb"))
	if len(matches) == 0 {
		if _, err := run(ctx, cache, "apt-get", "download", "-qq", name+"="+version); err != nil {
			return Package{}, err
		}
		matches, _ = filepath.Glob(filepath.Join(cache, file+"*.deb"))
		if len(matches) == 0 {
			return Package{}, fmt.Errorf("debian package %s=%s: apt-get download wrote no %s*.deb", name, version, file)
		}
	}
	p := Package{Name: name, Version: version, Deb: matches[0], Dir: strings.TrimSuffix(matches[0], ".deb")}
	if _, err := os.Stat(filepath.Join(p.Dir, ".unpacked")); err == nil {
		return p, nil
	}
	_ = os.RemoveAll(p.Dir) // a partial unpack from an interrupted build
	if _, err := run(ctx, "", "dpkg-deb", "-x", p.Deb, p.Dir); err != nil {
		return Package{}, err
	}
	return p, os.WriteFile(filepath.Join(p.Dir, ".unpacked"), nil, 0o644)
}

func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
