package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ErrUnknownModule is returned for a name that is neither a module of the
// tree, a built-in module, nor an alias of one.
var ErrUnknownModule = errors.New("no such module or alias")

// Index is what depmod recorded about a module tree (/lib/modules/RELEASE):
// where each module is, what it needs, its aliases and soft dependencies,
// and which modules are built into the kernel.
type Index struct {
	Dir string // the module tree

	paths   map[string]string   // module name -> path relative to Dir
	deps    map[string][]string // module name -> names of every module it needs
	softPre map[string][]string // module name -> names or aliases to load before it
	aliases []alias
	builtin map[string]bool
}

type alias struct {
	pattern string // a glob as in modules.alias
	module  string
}

// OpenIndex reads modules.dep from dir, and modules.alias, modules.softdep
// and modules.builtin when they are there.
func OpenIndex(dir string) (*Index, error) {
	return OpenIndexFS(os.DirFS(dir), dir)
}

// OpenIndexFS reads the index files from fsys; dir is recorded as the
// tree's path for Path.
func OpenIndexFS(fsys fs.FS, dir string) (*Index, error) {
	ix := &Index{
		Dir:     dir,
		paths:   map[string]string{},
		deps:    map[string][]string{},
		softPre: map[string][]string{},
		builtin: map[string]bool{},
	}
	if err := eachLine(fsys, "modules.dep", true, ix.parseDep); err != nil {
		return nil, err
	}
	if err := eachLine(fsys, "modules.alias", false, ix.parseAlias); err != nil {
		return nil, err
	}
	if err := eachLine(fsys, "modules.softdep", false, ix.parseSoftdep); err != nil {
		return nil, err
	}
	err := eachLine(fsys, "modules.builtin", false, func(line string) error {
		ix.builtin[ModuleName(line)] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ix, nil
}

func eachLine(fsys fs.FS, name string, required bool, fn func(string) error) error {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	return s.Err()
}

func (ix *Index) parseDep(line string) error {
	mod, deps, ok := strings.Cut(line, ":")
	if !ok {
		return fmt.Errorf("%q has no colon", line)
	}
	name := ModuleName(mod)
	ix.paths[name] = mod
	for _, d := range strings.Fields(deps) {
		ix.deps[name] = append(ix.deps[name], ModuleName(d))
	}
	return nil
}

func (ix *Index) parseAlias(line string) error {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "alias" {
		return fmt.Errorf("%q is not \"alias PATTERN MODULE\"", line)
	}
	ix.aliases = append(ix.aliases, alias{pattern: f[1], module: ModuleName(f[2])})
	return nil
}

// parseSoftdep reads "softdep MODULE pre: A B post: C". Only the pre
// dependencies matter for loading; names before any pre:/post: are
// treated as pre, as modprobe does.
func (ix *Index) parseSoftdep(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "softdep" {
		return fmt.Errorf("%q is not \"softdep MODULE pre: ...\"", line)
	}
	name, pre := ModuleName(f[1]), true
	for _, w := range f[2:] {
		switch w {
		case "pre:":
			pre = true
		case "post:":
			pre = false
		default:
			if pre {
				ix.softPre[name] = append(ix.softPre[name], w)
			}
		}
	}
	return nil
}

// ModuleName turns a module path or name into the kernel's name for it:
// the base name without .ko (and a compression suffix), dashes as
// underscores.
func ModuleName(s string) string {
	s = path.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// Path returns the module's file, or false for a module not in the tree.
func (ix *Index) Path(name string) (string, bool) {
	p, ok := ix.paths[ModuleName(name)]
	if !ok {
		return "", false
	}
	return filepath.Join(ix.Dir, p), true
}

// RelPath returns the module's path relative to the tree.
func (ix *Index) RelPath(name string) (string, bool) {
	p, ok := ix.paths[ModuleName(name)]
	return p, ok
}

// Builtin reports whether the module is built into the kernel.
func (ix *Index) Builtin(name string) bool { return ix.builtin[ModuleName(name)] }

// Has reports whether name is a module of the tree or a built-in one.
func (ix *Index) Has(name string) bool {
	name = ModuleName(name)
	_, ok := ix.paths[name]
	return ok || ix.builtin[name]
}

// Lookup resolves a module name or an alias (such as "crypto-crc32c" or a
// device modalias) to the names of the modules that provide it, sorted.
func (ix *Index) Lookup(nameOrAlias string) ([]string, error) {
	if ix.Has(nameOrAlias) {
		return []string{ModuleName(nameOrAlias)}, nil
	}
	seen := map[string]bool{}
	var mods []string
	for _, a := range ix.aliases {
		if seen[a.module] {
			continue
		}
		if ok, _ := path.Match(a.pattern, nameOrAlias); ok {
			seen[a.module] = true
			mods = append(mods, a.module)
		}
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("%s: %w", nameOrAlias, ErrUnknownModule)
	}
	sort.Strings(mods)
	return mods, nil
}

// Order returns the modules to insert, dependencies first, for loading
// name: its hard dependencies from modules.dep, then the module. Soft
// dependencies are not included; see SoftDeps.
func (ix *Index) Order(name string) ([]string, error) {
	var order []string
	done := map[string]bool{}
	var visit func(string, []string) error
	visit = func(m string, stack []string) error {
		if done[m] {
			return nil
		}
		for _, s := range stack {
			if s == m {
				return fmt.Errorf("dependency cycle: %s -> %s", strings.Join(stack, " -> "), m)
			}
		}
		if _, ok := ix.paths[m]; !ok {
			if ix.builtin[m] {
				done[m] = true
				return nil
			}
			return fmt.Errorf("%s: %w", m, ErrUnknownModule)
		}
		for _, d := range ix.deps[m] {
			if err := visit(d, append(stack, m)); err != nil {
				return err
			}
		}
		done[m] = true
		order = append(order, m)
		return nil
	}
	if err := visit(ModuleName(name), nil); err != nil {
		return nil, err
	}
	return order, nil
}

// SoftDeps returns the names or aliases modules.softdep asks to load
// before the module.
func (ix *Index) SoftDeps(name string) []string { return ix.softPre[ModuleName(name)] }

// Closure returns every module that loading the given names or aliases can
// insert: each one's providers, their soft dependencies and hard
// dependencies, transitively. Built-in modules are left out. It is what an
// image must ship for those names.
func (ix *Index) Closure(names ...string) ([]string, error) {
	set := map[string]bool{}
	var add func(string) error
	add = func(n string) error {
		mods, err := ix.Lookup(n)
		if err != nil {
			return err
		}
		for _, m := range mods {
			if set[m] || ix.builtin[m] {
				continue
			}
			order, err := ix.Order(m)
			if err != nil {
				return err
			}
			for _, o := range order {
				if set[o] {
					continue
				}
				set[o] = true
				for _, s := range ix.softPre[o] {
					if err := add(s); err != nil {
						return fmt.Errorf("soft dependency of %s: %w", o, err)
					}
				}
			}
		}
		return nil
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out, nil
}

// Subset writes the index files for a tree holding only the given modules:
// modules.dep, modules.alias and modules.softdep lines that concern them,
// and modules.builtin in full. It returns file name -> contents, each
// sorted, so the same modules always give the same bytes.
func (ix *Index) Subset(mods []string) map[string][]byte {
	keep := map[string]bool{}
	for _, m := range mods {
		keep[ModuleName(m)] = true
	}
	var dep, al, soft, builtin []string
	for name, p := range ix.paths {
		if !keep[name] {
			continue
		}
		line := p + ":"
		for _, d := range ix.deps[name] {
			line += " " + ix.paths[d]
		}
		dep = append(dep, line)
		if pre := ix.softPre[name]; len(pre) > 0 {
			soft = append(soft, "softdep "+name+" pre: "+strings.Join(pre, " "))
		}
	}
	for _, a := range ix.aliases {
		if keep[a.module] {
			al = append(al, "alias "+a.pattern+" "+a.module)
		}
	}
	for name := range ix.builtin {
		builtin = append(builtin, name)
	}
	joined := func(lines []string) []byte {
		sort.Strings(lines)
		if len(lines) == 0 {
			return nil
		}
		return []byte(strings.Join(lines, "\n") + "\n")
	}
	return map[string][]byte{
		"modules.dep":     joined(dep),
		"modules.alias":   joined(al),
		"modules.softdep": joined(soft),
		"modules.builtin": joined(builtin),
	}
}
