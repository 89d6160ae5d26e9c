package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A Result tells what happened to one module.
type Result struct {
	Module string
	Err    error         // nil when the module is in the kernel now
	Took   time.Duration // time spent inserting it
	// Already is set when the module was loaded or built in before.
	Already bool
	// Alternative is set on a failure that did not matter: the module was
	// one of several providers of an alias (crypto-crc32c gives
	// crc32c_generic and crc32c_intel) and another one loaded.
	Alternative bool
}

// A LoadError is a module the kernel refused.
type LoadError struct {
	Module string
	Err    error // an errno from finit_module, or why it was not tried
}

func (e *LoadError) Error() string { return "module " + e.Module + ": " + describe(e.Err) }
func (e *LoadError) Unwrap() error { return e.Err }

// Loader inserts modules of a tree with their dependencies. It remembers
// what it loaded and what failed, so each module is tried once.
type Loader struct {
	ix *Index
	// Params holds module parameters by module name ("opt=1 other=x").
	Params map[string]string
	// Insert puts a module file into the kernel; finit_module by default.
	Insert func(path, params string) error

	loaded map[string]bool
	failed map[string]error
}

// NewLoader returns a loader for the index's tree that knows what the
// running kernel already has, from procModules (normally /proc/modules;
// empty for none).
func NewLoader(ix *Index, procModules string) (*Loader, error) {
	l := &Loader{
		ix:     ix,
		Params: map[string]string{},
		Insert: finitModule,
		loaded: map[string]bool{},
		failed: map[string]error{},
	}
	if procModules == "" {
		return l, nil
	}
	f, err := os.Open(procModules)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if name, _, ok := strings.Cut(s.Text(), " "); ok {
			l.loaded[name] = true
		}
	}
	return l, s.Err()
}

// Loaded reports whether the loader knows the module to be in the kernel.
func (l *Loader) Loaded(name string) bool {
	name = ModuleName(name)
	return l.loaded[name] || l.ix.Builtin(name)
}

// Load inserts the module, or every provider of the alias, with their soft
// and hard dependencies, and returns what happened to each module it
// tried. For an alias, one provider loading is enough: the others' failures
// are marked Alternative.
func (l *Loader) Load(nameOrAlias string) []Result {
	mods, err := l.ix.Lookup(nameOrAlias)
	if err != nil {
		return []Result{{Module: nameOrAlias, Err: &LoadError{Module: nameOrAlias, Err: err}}}
	}
	var results []Result
	ok := false
	for _, m := range mods {
		rs := l.loadModule(m)
		results = append(results, rs...)
		if l.Loaded(m) {
			ok = true
		}
	}
	if ok && len(mods) > 1 {
		for i := range results {
			if results[i].Err != nil {
				results[i].Alternative = true
			}
		}
	}
	return results
}

func (l *Loader) loadModule(name string) []Result {
	if l.Loaded(name) {
		return []Result{{Module: name, Already: true}}
	}
	var results []Result
	for _, s := range l.ix.SoftDeps(name) {
		// A soft dependency that fails does not stop the module: the
		// kernel may manage without it, and its failure is reported.
		results = append(results, l.Load(s)...)
	}
	order, err := l.ix.Order(name)
	if err != nil {
		return append(results, Result{Module: name, Err: &LoadError{Module: name, Err: err}})
	}
	for _, m := range order {
		if l.Loaded(m) {
			continue
		}
		if err, ok := l.failed[m]; ok {
			results = append(results, Result{Module: m, Err: err})
			break
		}
		r := l.insert(m)
		results = append(results, r)
		if r.Err != nil {
			// Everything after m in the order needs it, directly or not.
			for _, after := range order[indexOf(order, m)+1:] {
				if !l.Loaded(after) {
					l.failed[after] = &LoadError{Module: after, Err: fmt.Errorf("needs %s, which failed", m)}
				}
			}
			if m != name {
				results = append(results, Result{Module: name, Err: l.failed[name]})
			}
			break
		}
	}
	return results
}

func (l *Loader) insert(name string) Result {
	path, ok := l.ix.Path(name)
	if !ok {
		err := &LoadError{Module: name, Err: ErrUnknownModule}
		l.failed[name] = err
		return Result{Module: name, Err: err}
	}
	start := time.Now()
	err := l.Insert(path, l.Params[name])
	r := Result{Module: name, Took: time.Since(start)}
	switch {
	case err == nil:
		l.loaded[name] = true
	case errors.Is(err, errExist):
		l.loaded[name] = true
		r.Already = true
	default:
		r.Err = &LoadError{Module: name, Err: err}
		l.failed[name] = r.Err
	}
	return r
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// DeviceAliases returns the modaliases of the devices the kernel sees
// under sysfs (normally /sys): every bus device and the CPU, sorted and
// without duplicates.
func DeviceAliases(sysfs string) []string {
	files, _ := filepath.Glob(filepath.Join(sysfs, "bus/*/devices/*/modalias")) // the pattern is valid
	files = append(files, filepath.Join(sysfs, "devices/system/cpu/modalias"))
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // devices come and go; a missing one has nothing to match
		}
		a := strings.TrimSpace(string(data))
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Matching returns the modules among candidates that claim one of the
// device modaliases, sorted.
func (ix *Index) Matching(modaliases []string, candidates []string) []string {
	want := map[string]bool{}
	for _, c := range candidates {
		want[ModuleName(c)] = true
	}
	got := map[string]bool{}
	for _, a := range ix.aliases {
		if !want[a.module] || got[a.module] {
			continue
		}
		for _, m := range modaliases {
			if ok, _ := path.Match(a.pattern, m); ok {
				got[a.module] = true
				break
			}
		}
	}
	out := make([]string, 0, len(got))
	for m := range got {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
