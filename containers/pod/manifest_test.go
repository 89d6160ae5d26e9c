package pod

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

func boolp(b bool) *bool { return &b }

func TestReadOnlyPrecedence(t *testing.T) {
	mps := []types.MountPoint{{Name: "data", Path: "/data", ReadOnly: true}, {Name: "logs", Path: "/logs"}}
	for _, c := range []struct {
		volume *bool
		mount  schema.Mount
		want   bool
	}{
		{nil, schema.Mount{Volume: "data", Path: "/data"}, true},
		{nil, schema.Mount{Volume: "logs", Path: "/logs"}, false},
		{boolp(false), schema.Mount{Volume: "data", Path: "/data"}, false},
		{boolp(true), schema.Mount{Volume: "logs", Path: "/logs"}, true},
		{nil, schema.Mount{Volume: "other", Path: "/data/"}, true}, // by path
		{nil, schema.Mount{Volume: "other", Path: "/elsewhere"}, false},
	} {
		v := types.Volume{Name: c.mount.Volume, Kind: "empty", ReadOnly: c.volume}
		if got := readOnly(v, c.mount, mps); got != c.want {
			t.Errorf("volume readOnly %v, mount %+v: %v, want %v", c.volume, c.mount, got, c.want)
		}
	}
}

func TestEnvironmentOrder(t *testing.T) {
	env := environment("web", types.Environment{{Name: "PATH", Value: "/app/bin"}, {Name: "X", Value: "1"}, {Name: "AC_APP_NAME", Value: "spoof"}}, "http://md/tok")
	want := []string{"PATH=/app/bin", "container=kurma", "X=1", "AC_APP_NAME=web", "AC_METADATA_URL=http://md/tok"}
	if strings.Join(env, " ") != strings.Join(want, " ") {
		t.Errorf("environment %q, want %q", env, want)
	}
	env = environment("web", nil, "u")
	if env[0] != "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Errorf("default PATH %q", env[0])
	}
}

func TestVolumeMode(t *testing.T) {
	for _, c := range []struct {
		mode string
		want os.FileMode
		err  bool
	}{
		{"0755", 0o755, false},
		{"1777", 0o777 | os.ModeSticky, false},
		{"2750", 0o750 | os.ModeSetgid, false},
		{"0800", 0, true},
		{"abc", 0, true},
		{"77777", 0, true},
	} {
		m := c.mode
		got, err := volumeMode(types.Volume{Name: "v", Kind: "empty", Mode: &m})
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("mode %q: %v %v, want %v (error %v)", c.mode, got, err, c.want, c.err)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("mode %q: error %v does not wrap ErrInvalid", c.mode, err)
		}
	}
}

func TestParseManifest(t *testing.T) {
	good := `{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"a","image":{"id":"sha512-aaaa"}}],"volumes":[{"name":"v","kind":"empty"}]}`
	if _, err := ParseManifest([]byte(good)); err != nil {
		t.Errorf("good manifest: %v", err)
	}
	for _, bad := range []string{
		`{"acKind":"ImageManifest","acVersion":"0.8.11"}`,
		`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"a"},{"name":"a"}]}`,
		`{"acKind":"PodManifest","acVersion":"0.8.11","volumes":[{"name":"v","kind":"host"}]}`,
		`{"acKind":"PodManifest","acVersion":"0.8.11","volumes":[{"name":"v","kind":"empty"},{"name":"v","kind":"empty"}]}`,
		`not json`,
		`{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"Bad Name"}]}`,
		strings.Repeat(" ", maxManifestBytes+1),
	} {
		if _, err := ParseManifest([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("manifest %.60q: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestSatisfied(t *testing.T) {
	mp := types.MountPoint{Name: "db", Path: "/var/db"}
	if satisfied(mp, []schema.Mount{{Volume: "db", Path: "/elsewhere"}}) == nil {
		t.Error("a mount naming the mount point's volume does not satisfy it")
	}
	if satisfied(mp, []schema.Mount{{Volume: "other", Path: "/var/db/"}}) == nil {
		t.Error("a mount at the mount point's path does not satisfy it")
	}
	if satisfied(mp, []schema.Mount{{Volume: "other", Path: "/var"}}) != nil {
		t.Error("an unrelated mount satisfies it")
	}
}

func TestStartTime(t *testing.T) {
	a, err := startTime(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("startTime: %d %v", a, err)
	}
	if b, _ := startTime(os.Getpid()); b != a {
		t.Errorf("start time changed: %d then %d", a, b)
	}
	if _, err := startTime(1 << 30); err == nil {
		t.Error("start time of a missing process")
	}
}
