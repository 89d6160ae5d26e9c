package kmod

import (
	"errors"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeKernel stands in for finit_module: it records what was inserted and
// refuses the modules in fail with their errno.
type fakeKernel struct {
	mu       sync.Mutex
	inserted []string
	params   map[string]string
	fail     map[string]error
}

func (k *fakeKernel) insert(path, params string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	name := ModuleName(path)
	if err, ok := k.fail[name]; ok {
		return err
	}
	k.inserted = append(k.inserted, name)
	if params != "" {
		k.params[name] = params
	}
	return nil
}

func newTestLoader(t *testing.T, fail map[string]error) (*Loader, *fakeKernel) {
	t.Helper()
	l, err := NewLoader(testIndex(t), "")
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{params: map[string]string{}, fail: fail}
	l.Insert = k.insert
	return l, k
}

func errs(rs []Result) []string {
	var out []string
	for _, r := range rs {
		if r.Err != nil && !r.Alternative {
			out = append(out, r.Err.Error())
		}
	}
	return out
}

func TestLoadInsertsDependenciesFirst(t *testing.T) {
	l, k := newTestLoader(t, nil)
	l.Params["virtio_net"] = "napi_tx=1"
	if e := errs(l.Load("virtio_net")); e != nil {
		t.Fatalf("errors: %v", e)
	}
	want := []string{"net_failover", "failover", "virtio_ring", "virtio", "virtio_net"}
	if !sameSet(k.inserted, want) {
		t.Errorf("inserted %v, want %v", k.inserted, want)
	}
	// Each module went in after the modules it needs.
	pos := map[string]int{}
	for i, m := range k.inserted {
		pos[m] = i
	}
	for _, m := range k.inserted {
		for _, d := range l.ix.deps[m] {
			if pos[d] > pos[m] {
				t.Errorf("inserted %v: %s before its dependency %s", k.inserted, m, d)
			}
		}
	}
	if k.params["virtio_net"] != "napi_tx=1" {
		t.Errorf("params = %q", k.params["virtio_net"])
	}
	// Loading again inserts nothing and reports nothing new.
	k.inserted = nil
	if rs := l.Load("virtio_net"); len(k.inserted) != 0 || len(rs) != 0 {
		t.Errorf("second load inserted %v, results %+v", k.inserted, rs)
	}
	if !l.Loaded("virtio_net") || !l.Loaded("failover") {
		t.Error("Loaded does not know what the loader inserted")
	}
}

func TestLoadSoftDependencyAlternatives(t *testing.T) {
	// A CPU without SSE4.2: crc32c_intel fails, crc32c_generic serves.
	l, k := newTestLoader(t, map[string]error{"crc32c_intel": unix.ENODEV})
	rs := l.Load("ext4")
	if e := errs(rs); e != nil {
		t.Errorf("errors: %v", e)
	}
	if !contains(k.inserted, "crc32c_generic") || !contains(k.inserted, "ext4") {
		t.Errorf("inserted %v", k.inserted)
	}
	var alt bool
	for _, r := range rs {
		alt = alt || (r.Module == "crc32c_intel" && r.Alternative && r.Err != nil)
	}
	if !alt {
		t.Errorf("crc32c_intel's failure is not marked as an alternative: %+v", rs)
	}
}

func TestLoadFailureNamesModuleAndErrno(t *testing.T) {
	l, k := newTestLoader(t, map[string]error{"failover": unix.ENOEXEC})
	rs := l.Load("virtio_net")
	got := errs(rs)
	sort.Strings(got)
	want := []string{
		"module failover: ENOEXEC (exec format error)",
		"module net_failover: needs failover, which failed",
		"module virtio_net: needs net_failover, which failed",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors = %q, want %q", got, want)
	}
	if contains(k.inserted, "virtio_net") || contains(k.inserted, "net_failover") {
		t.Errorf("inserted %v although a dependency failed", k.inserted)
	}
	var le *LoadError
	found := false
	for _, r := range rs {
		found = found || errors.As(r.Err, &le) && le.Module == "failover" && errors.Is(r.Err, unix.ENOEXEC)
	}
	if !found {
		t.Error("the errno is not reachable with errors.Is")
	}
	if l.Loaded("virtio_net") {
		t.Error("Loaded(virtio_net) after its dependency failed")
	}
}

func TestLoadExistingModuleIsSuccess(t *testing.T) {
	l, _ := newTestLoader(t, map[string]error{"e1000": unix.EEXIST})
	rs := l.Load("e1000")
	if len(rs) != 1 || rs[0].Err != nil || !rs[0].Already {
		t.Errorf("results = %+v, want e1000 already there", rs)
	}
}

func TestLoadUnknown(t *testing.T) {
	l, _ := newTestLoader(t, nil)
	got := errs(l.Load("nonesuch"))
	if len(got) != 1 || !strings.Contains(got[0], "nonesuch") || !strings.Contains(got[0], ErrUnknownModule.Error()) {
		t.Errorf("errors = %q", got)
	}
}

func TestNewLoaderReadsProcModules(t *testing.T) {
	p := filepath.Join(t.TempDir(), "modules")
	writeFile(t, p, "virtio_ring 40960 1 virtio, Live 0x0\nvirtio 16384 1 virtio_ring, Live 0x0\n")
	l, err := NewLoader(testIndex(t), p)
	if err != nil {
		t.Fatal(err)
	}
	k := &fakeKernel{params: map[string]string{}}
	l.Insert = k.insert
	l.Load("virtio_net")
	if contains(k.inserted, "virtio") || contains(k.inserted, "virtio_ring") {
		t.Errorf("inserted %v, which includes modules /proc/modules lists", k.inserted)
	}
}

func TestLoadAllConcurrentSharesDependencies(t *testing.T) {
	l, k := newTestLoader(t, nil)
	rs := l.LoadAll([]string{"virtio_net", "net_failover", "failover", "ext4", "e1000", "crc32c"})
	if e := errs(rs); e != nil {
		t.Fatalf("errors: %v", e)
	}
	seen := map[string]int{}
	for _, m := range k.inserted {
		seen[m]++
	}
	for m, n := range seen {
		if n != 1 {
			t.Errorf("%s inserted %d times", m, n)
		}
	}
	if len(rs) != len(k.inserted) {
		t.Errorf("%d results for %d insertions: %+v", len(rs), len(k.inserted), rs)
	}
}
