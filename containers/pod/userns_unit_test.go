package pod

import (
	"errors"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/stage"
)

func TestIDPoolCheck(t *testing.T) {
	for _, c := range []struct {
		pool IDPool
		ok   bool
	}{
		{IDPool{}, true},
		{IDPool{FirstID: 1 << 28, Ranges: 1024}, true},
		{IDPool{FirstID: 65536, Ranges: 1}, true},
		{IDPool{FirstID: 1000, Ranges: 1}, false},               // the host's own
		{IDPool{FirstID: 1 << 28, Ranges: -1}, false},           // negative
		{IDPool{FirstID: 0xffff0000, Ranges: 1}, false},         // past the last ID, (uid_t)-1
		{IDPool{FirstID: 0xfffe0000, Ranges: 1}, true},          // ends just below it
		{IDPool{FirstID: 1 << 28, Ranges: 1 << 20}, false},      // too many
		{IDPool{FirstID: 0, Ranges: 0}, true},                   // none: refused pods
		{IDPool{FirstID: 0x80000000 - 65536, Ranges: 1}, true},  // below 2^31
		{IDPool{FirstID: 0x80000000 - 65536, Ranges: 2}, true},  // across it: allowed, the operator's choice
		{IDPool{FirstID: 0xffffffff - 65535, Ranges: 1}, false}, // ends on (uid_t)-1
		{IDPool{FirstID: 0xffffffff - 65536, Ranges: 1}, true},  // ends just before
	} {
		if err := c.pool.check(); (err == nil) != c.ok {
			t.Errorf("%+v: %v, want ok %v", c.pool, err, c.ok)
		}
	}
}

func TestIDRanges(t *testing.T) {
	r := newIDRanges(IDPool{FirstID: 1 << 20, Ranges: 3})
	var got []*stage.IDMap
	for range 3 {
		m, err := r.take()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	for i, m := range got {
		if want := uint32(1<<20 + i*UserNSSize); m.HostID != want || m.Size != UserNSSize {
			t.Errorf("range %d = %+v, want from %d", i, m, want)
		}
	}
	if _, err := r.take(); !errors.Is(err, ErrNoIDRange) || !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("full pool: %v", err)
	}
	r.release(got[1])
	if m, err := r.take(); err != nil || m.HostID != got[1].HostID {
		t.Fatalf("after a release: %+v %v, want %+v", m, err, got[1])
	}
	// A restarted daemon holds the ranges of the pods it finds; those
	// outside its pool (the configuration changed) are left alone.
	r = newIDRanges(IDPool{FirstID: 1 << 20, Ranges: 3})
	r.hold(got[2])
	r.hold(&stage.IDMap{HostID: 1 << 30, Size: UserNSSize})
	r.hold(nil)
	r.release(&stage.IDMap{HostID: 12, Size: UserNSSize})
	if r.free() != 2 {
		t.Errorf("free = %d, want 2", r.free())
	}
	if m, _ := r.take(); m.HostID != got[0].HostID {
		t.Errorf("took %+v, want the first range", m)
	}
	if _, err := newIDRanges(IDPool{}).take(); !errors.Is(err, ErrInvalid) {
		t.Errorf("no pool: %v, want ErrInvalid", err)
	}
}

func TestUserNSRefusals(t *testing.T) {
	userns := isolator(NamespacesIsolator, `{"user":"child"}`)
	uid, big := 1000, 70000
	for _, c := range []struct {
		description string
		app         []types.Isolator
		gids        []int
		volume      *types.Volume
		ok          bool
	}{
		{"plain", nil, nil, nil, true},
		{"groups inside", nil, []int{0, 65535}, nil, true},
		{"a group outside", nil, []int{65536}, nil, false},
		{"privileged app", []types.Isolator{isolator(PrivilegedIsolator, "true")}, nil, nil, false},
		{"API access", []types.Isolator{isolator(APIAccessIsolator, "true")}, nil, nil, false},
		{"volume inside", nil, nil, &types.Volume{Name: "v", Kind: "empty", UID: &uid, GID: &uid}, true},
		{"volume outside", nil, nil, &types.Volume{Name: "v", Kind: "empty", UID: &uid, GID: &big}, false},
	} {
		p := &plan{manifest: &schema.PodManifest{Isolators: types.Isolators{userns}}, emptyVolumes: map[string]types.Volume{},
			apps: []appPlan{{name: "a", app: &types.App{Isolators: c.app, SupplementaryGIDs: c.gids}}}}
		if c.volume != nil {
			p.emptyVolumes["v"] = *c.volume
		}
		err := p.resolveIsolators(true)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: %v, want ok %v", c.description, err, c.ok)
		}
	}
}
