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
	"sync"
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

// Loader inserts modules of a tree with their dependencies, concurrently
// where they do not depend on each other (a driver's probe may sleep on
// hardware). It remembers every module it tried, so each is tried once.
type Loader struct {
	ix *Index
	// Params holds module parameters by module name ("opt=1 other=x").
	Params map[string]string
	// Insert puts a module file into the kernel; finit_module by default.
	// It is called concurrently.
	Insert func(path, params string) error

	mu     sync.Mutex
	loaded map[string]bool // in the kernel before the loader started
	states map[string]*modState
}

type modState struct {
	done chan struct{} // closed when res is final
	res  Result
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
		states: map[string]*modState{},
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

// Loaded reports whether the module is in the kernel: built in, there
// before the loader started, or inserted by it.
func (l *Loader) Loaded(name string) bool {
	name = ModuleName(name)
	if l.ix.Builtin(name) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded[name] {
		return true
	}
	st, ok := l.states[name]
	if !ok {
		return false
	}
	select {
	case <-st.done:
		return st.res.Err == nil
	default:
		return false
	}
}

// Tried reports whether the loader has tried the module, whatever came
// of it.
func (l *Loader) Tried(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.states[ModuleName(name)]
	return ok
}

// Load is LoadAll of one name.
func (l *Loader) Load(nameOrAlias string) []Result { return l.LoadAll([]string{nameOrAlias}) }

// LoadAll inserts the modules, or every provider of each alias, with their
// soft and hard dependencies, the names concurrently. It returns what
// happened to each module this call tried first, in the order they
// finished, and an error for each name that is no module or alias. For an
// alias one provider loading is enough: the others' failures are marked
// Alternative.
func (l *Loader) LoadAll(names []string) []Result {
	c := &collector{}
	concurrently(names, func(_ int, n string) { l.load(n, c) })
	return c.results
}

// concurrently calls fn for each item in its own goroutine and waits for
// them all.
func concurrently(items []string, fn func(i int, item string)) {
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i, item)
		}()
	}
	wg.Wait()
}

// collector gathers the results of one LoadAll call.
type collector struct {
	mu      sync.Mutex
	results []Result
}

func (c *collector) add(r Result) {
	c.mu.Lock()
	c.results = append(c.results, r)
	c.mu.Unlock()
}

func (c *collector) markAlternatives(mods []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.results {
		if c.results[i].Err != nil && indexOf(mods, c.results[i].Module) >= 0 {
			c.results[i].Alternative = true
		}
	}
}

// load loads a name or every provider of an alias.
func (l *Loader) load(nameOrAlias string, c *collector) {
	mods, err := l.ix.Lookup(nameOrAlias)
	if err != nil {
		c.add(Result{Module: nameOrAlias, Err: &LoadError{Module: nameOrAlias, Err: err}})
		return
	}
	concurrently(mods, func(_ int, m string) { l.module(m, c) })
	if len(mods) > 1 {
		for _, m := range mods {
			if l.Loaded(m) {
				c.markAlternatives(mods)
				break
			}
		}
	}
}

// module loads one module once: its soft dependencies, its hard ones,
// then itself. Concurrent callers for the same module wait for the first.
func (l *Loader) module(name string, c *collector) Result {
	l.mu.Lock()
	st, seen := l.states[name]
	if !seen {
		st = &modState{done: make(chan struct{})}
		l.states[name] = st
	}
	already := l.loaded[name] || l.ix.Builtin(name)
	l.mu.Unlock()
	if seen {
		<-st.done
		return st.res
	}
	st.res = l.resolve(name, already, c)
	close(st.done)
	c.add(st.res)
	return st.res
}

func (l *Loader) resolve(name string, already bool, c *collector) Result {
	if already {
		return Result{Module: name, Already: true}
	}
	// Order checks the whole dependency graph first: a cycle would make
	// module wait for itself.
	if _, err := l.ix.Order(name); err != nil {
		return Result{Module: name, Err: &LoadError{Module: name, Err: err}}
	}
	// A soft dependency that fails does not stop the module: the kernel
	// may manage without it, and its failure is reported on its own.
	for _, s := range l.ix.SoftDeps(name) {
		l.load(s, c)
	}
	deps := l.ix.deps[name]
	errs := make([]error, len(deps))
	concurrently(deps, func(i int, d string) {
		if r := l.module(d, c); r.Err != nil {
			errs[i] = fmt.Errorf("needs %s, which failed", d)
		}
	})
	for _, err := range errs {
		if err != nil {
			return Result{Module: name, Err: &LoadError{Module: name, Err: err}}
		}
	}
	return l.insert(name)
}

func (l *Loader) insert(name string) Result {
	path, ok := l.ix.Path(name)
	if !ok {
		return Result{Module: name, Err: &LoadError{Module: name, Err: ErrUnknownModule}}
	}
	start := time.Now()
	err := l.Insert(path, l.Params[name])
	r := Result{Module: name, Took: time.Since(start)}
	switch {
	case err == nil:
	case errors.Is(err, errExist):
		r.Already = true
	default:
		r.Err = &LoadError{Module: name, Err: err}
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
