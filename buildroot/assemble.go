package buildroot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Assemble builds the recipe's tree in dest (which must not exist) from
// the unpacked packages; Go programs are built from the module in
// moduleDir. It returns the paths in the tree, sorted.
func Assemble(ctx context.Context, r *Recipe, pkgs []Package, moduleDir, dest string) ([]string, error) {
	if err := os.Mkdir(dest, 0o755); err != nil {
		return nil, err
	}
	a := &assembler{recipe: r, pkgs: pkgs, dest: dest, done: map[string]bool{}, copied: map[string]string{}}
	for _, b := range r.Binaries {
		if err := a.binary(b); err != nil {
			return nil, err
		}
	}
	for _, f := range r.Files {
		if err := a.copy(f, f); err != nil {
			return nil, err
		}
	}
	for _, d := range r.Dirs {
		path, mode, err := dirMode(d)
		if err != nil {
			return nil, fmt.Errorf("recipe %s: %w", r.Name, err)
		}
		if err := os.MkdirAll(filepath.Join(dest, path), 0o755); err != nil {
			return nil, err
		}
		if err := os.Chmod(filepath.Join(dest, path), mode); err != nil {
			return nil, err
		}
	}
	for _, link := range sortedKeys(r.Symlinks) {
		p := filepath.Join(dest, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.Symlink(r.Symlinks[link], p); err != nil {
			return nil, fmt.Errorf("recipe %s: symlink %s: %w", r.Name, link, err)
		}
	}
	if r.BusyboxApplets != "" {
		if err := busyboxApplets(filepath.Join(dest, r.BusyboxApplets)); err != nil {
			return nil, fmt.Errorf("recipe %s: %w", r.Name, err)
		}
	}
	for _, p := range sortedKeys(r.FilesData) {
		out := filepath.Join(dest, p)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(out, []byte(r.FilesData[p]), 0o644); err != nil {
			return nil, err
		}
	}
	for _, out := range sortedKeys(r.Go) {
		if err := goBuild(ctx, moduleDir, r.Go[out], filepath.Join(dest, out)); err != nil {
			return nil, fmt.Errorf("recipe %s: %w", r.Name, err)
		}
	}
	var paths []string
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dest {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		paths = append(paths, "/"+rel)
		return nil
	})
	sort.Strings(paths)
	return paths, err
}

type assembler struct {
	recipe *Recipe
	pkgs   []Package
	dest   string
	done   map[string]bool   // tree paths already copied
	copied map[string]string // host file -> the tree path it was copied to
}

// binary copies an ELF program with its interpreter and libraries.
func (a *assembler) binary(p string) error {
	src, err := a.resolve(p)
	if err != nil {
		return err
	}
	if err := a.copy(p, p); err != nil {
		return err
	}
	return a.deps(p, src)
}

func (a *assembler) deps(treePath, src string) error {
	interp, needed, runpath, err := elfDeps(src)
	if err != nil {
		return err
	}
	if interp != "" && !a.done[interp] {
		if err := a.copy(interp, interp); err != nil {
			return fmt.Errorf("recipe %s: %s needs the interpreter %s: %w", a.recipe.Name, treePath, interp, err)
		}
	}
	for _, lib := range needed {
		found := ""
		for _, dir := range append(runpath, libDirs...) {
			if _, err := a.resolve(path.Join(dir, lib)); err == nil {
				found = path.Join(dir, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("recipe %s: %s needs %s, which none of its packages has%s", a.recipe.Name, treePath, lib, hostHint(lib))
		}
		if a.done[found] {
			continue
		}
		libSrc, _ := a.resolve(found) // found above
		if err := a.copy(found, found); err != nil {
			return err
		}
		if err := a.deps(found, libSrc); err != nil {
			return err
		}
	}
	return nil
}

// hostHint names the Debian package that has a library on the build host.
func hostHint(lib string) string {
	for _, dir := range libDirs {
		out, err := exec.Command("dpkg", "-S", path.Join(dir, lib)).Output()
		if err == nil {
			pkg, _, _ := strings.Cut(string(out), ":")
			return fmt.Sprintf(" (add the package %s to the recipe)", pkg)
		}
	}
	return ""
}

// resolve finds p in the packages, following symlinks across them, with
// Debian's merged /usr: /lib/x is also /usr/lib/x.
func (a *assembler) resolve(p string) (string, error) {
	for hops := 0; hops < 40; hops++ {
		host, fi, err := a.lookup(p)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return host, nil
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			p = target
		} else {
			p = path.Join(path.Dir(p), target)
		}
	}
	return "", fmt.Errorf("%s: too many symlinks", p)
}

func (a *assembler) lookup(p string) (string, fs.FileInfo, error) {
	for _, alt := range usrMerged(p) {
		for _, pkg := range a.pkgs {
			host := filepath.Join(pkg.Dir, alt)
			if fi, err := os.Lstat(host); err == nil {
				return host, fi, nil
			}
		}
	}
	return "", nil, fmt.Errorf("%s: %w in the packages %s", p, fs.ErrNotExist, packageNames(a.pkgs))
}

func usrMerged(p string) []string {
	for _, d := range []string{"/lib", "/lib64", "/bin", "/sbin"} {
		if strings.HasPrefix(p, d+"/") {
			return []string{p, "/usr" + p}
		}
		if strings.HasPrefix(p, "/usr"+d+"/") {
			return []string{p, strings.TrimPrefix(p, "/usr")}
		}
	}
	return []string{p}
}

func packageNames(pkgs []Package) string {
	names := make([]string, len(pkgs))
	for i, p := range pkgs {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// copy puts the file the packages have at src into the tree at p, as a
// regular file with the source's permissions.
func (a *assembler) copy(src, p string) error {
	host, err := a.resolve(src)
	if err != nil {
		return fmt.Errorf("recipe %s: %w", a.recipe.Name, err)
	}
	fi, err := os.Stat(host)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("recipe %s: %s is not a regular file", a.recipe.Name, src)
	}
	out := filepath.Join(a.dest, p)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if first, ok := a.copied[host]; ok {
		// The same file under a second name (the dynamic linker is both
		// the interpreter in /lib64 and a library): link, don't copy.
		a.done[p] = true
		return os.Symlink(first, out)
	}
	a.copied[host] = p
	in, err := os.Open(host)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("recipe %s: %s is in the tree twice", a.recipe.Name, p)
	}
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	a.done[p] = true
	return f.Close()
}

func goBuild(ctx context.Context, moduleDir, pkg, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(string(msg)))
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// busyboxApplets links every applet of the busybox at path (it is run, at
// build time, to list them) to it, in its directory.
func busyboxApplets(path string) error {
	out, err := exec.Command(path, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w", path, err)
	}
	dir, name := filepath.Dir(path), filepath.Base(path)
	for _, applet := range strings.Fields(string(out)) {
		if applet == name || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink(name, filepath.Join(dir, applet)); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// dirMode reads a recipe's directory: "/path" (0755) or "/path:1777".
func dirMode(d string) (string, os.FileMode, error) {
	path, m, ok := strings.Cut(d, ":")
	if !ok {
		return path, 0o755, nil
	}
	n, err := strconv.ParseUint(m, 8, 32)
	if err != nil || n > 0o7777 {
		return "", 0, fmt.Errorf("directory %q: %q is not an octal mode", d, m)
	}
	mode := os.FileMode(n & 0o777)
	if n&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return path, mode, nil
}
