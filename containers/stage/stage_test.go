package stage

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestResolveIDs(t *testing.T) {
	files := map[string]string{
		"/etc/passwd": "root:x:0:0::/root:/bin/sh\nweb:x:1000:1000::/:/bin/sh\n1234:x:99:99::/:/bin/sh\nbroken\n",
		"/etc/group":  "root:x:0:\nwww:x:2000:\n",
	}
	r := idResolver{
		open: func(name string) (io.ReadCloser, error) {
			s, ok := files[name]
			if !ok {
				return nil, os.ErrNotExist
			}
			return io.NopCloser(strings.NewReader(s)), nil
		},
		owner: func(name string) (int, int, error) {
			if name == "/bin/ping" {
				return 5, 6, nil
			}
			return 0, 0, os.ErrNotExist
		},
	}
	for _, c := range []struct {
		value, db, what string
		want            int
		err             bool
	}{
		{"web", "/etc/passwd", "user", 1000, false},
		{"root", "/etc/passwd", "user", 0, false},
		{"1234", "/etc/passwd", "user", 99, false}, // a numeric name is a name first
		{"4321", "/etc/passwd", "user", 4321, false},
		{"/bin/ping", "/etc/passwd", "user", 5, false},
		{"/bin/ping", "/etc/group", "group", 6, false},
		{"www", "/etc/group", "group", 2000, false},
		{"nobody", "/etc/passwd", "user", 0, true},
		{"-1", "/etc/passwd", "user", 0, true},
		{"/missing", "/etc/passwd", "user", 0, true},
		{"", "/etc/passwd", "user", 0, true},
		{"www", "/etc/nogroup", "group", 0, true},
	} {
		got, err := r.resolve(c.value, c.db, c.what)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("resolve(%q in %s) = %d, %v; want %d, error %v", c.value, c.db, got, err, c.want, c.err)
		}
	}
}

func TestLogCap(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.log")
	l := newLog(p, 1000)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { l.copyFrom(r); close(done) }()
	defer func() { <-l.done }()
	line := strings.Repeat("x", 99) + "\n"
	for range 1000 {
		if _, err := io.WriteString(w, line); err != nil {
			t.Fatal(err)
		}
	}
	io.WriteString(w, "last\n")
	w.Close()
	<-done
	cur, _ := os.ReadFile(p)
	prev, _ := os.ReadFile(p + ".1")
	if total := len(cur) + len(prev); total > 1000 {
		t.Errorf("log holds %d bytes, cap 1000", total)
	}
	if !strings.HasSuffix(string(cur), "last\n") {
		t.Errorf("the newest output is lost: %q", cur)
	}
	if len(prev) != 500 {
		t.Errorf("previous part %d bytes, want 500", len(prev))
	}
}

func TestStatusEnded(t *testing.T) {
	for phase, want := range map[string]bool{PhaseStarting: false, PhaseRunning: false, PhaseStopping: false, PhaseExited: true, PhaseStopped: true, PhaseFailed: true} {
		if got := (&Status{Phase: phase}).Ended(); got != want {
			t.Errorf("%s: Ended %v, want %v", phase, got, want)
		}
	}
	if _, err := ReadStatus(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadStatus of nothing: %v", err)
	}
}

func TestFilterJSON(t *testing.T) {
	want := Isolation{Seccomp: []Filter{
		{{Code: 0x20, K: 4}, {Code: 0x15, Jt: 1, Jf: 2, K: 0xc000003e}, {Code: 0x6, K: 0x7fff0000}},
		{},
	}}
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"seccomp":["IAAAAAQAAAAVAAECPgAAwAYAAAAAAP9/",""]`) {
		t.Errorf("encoded as %s", data)
	}
	var got Isolation
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Seccomp) != 2 || len(got.Seccomp[1]) != 0 || !slices.Equal(got.Seccomp[0], want.Seccomp[0]) {
		t.Errorf("decoded %+v, want %+v", got.Seccomp, want.Seccomp)
	}
	for _, bad := range []string{`{"seccomp":["AAAA"]}`, `{"seccomp":["!"]}`, `{"seccomp":[3]}`} {
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

func TestIDMap(t *testing.T) {
	m := &IDMap{HostID: 1 << 20, Size: 65536}
	if m.String() != "0 1048576 65536\n" || m.Host(5) != 1<<20+5 || !m.Contains(65535) || m.Contains(65536) || m.Contains(-1) {
		t.Errorf("%+v: %q %d", m, m.String(), m.Host(5))
	}
	if id, ok := m.Inside(1<<20 + 1000); !ok || id != 1000 {
		t.Errorf("inside %d %v", id, ok)
	}
	if _, ok := m.Inside(12); ok {
		t.Error("a host ID below the range is mapped")
	}
}

func TestReceiveNamespaces(t *testing.T) {
	if ns, err := receiveNamespaces(nil, nil); ns != nil || err != nil {
		t.Errorf("no namespaces: %v %v, want nil: the init's own", ns, err)
	}
	for _, c := range []struct {
		kinds []string
		n     int
	}{{[]string{"net"}, 1}, {[]string{"user", "time"}, 2}, {[]string{"user"}, 2}} {
		files := make([]*os.File, c.n)
		for i := range files {
			g, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			files[i] = g
		}
		if _, err := receiveNamespaces(c.kinds, files); err == nil {
			t.Errorf("%v with %d descriptors accepted", c.kinds, c.n)
		}
	}
}
