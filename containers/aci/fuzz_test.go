package aci_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/aci/acitest"
)

func FuzzParseManifest(f *testing.F) {
	f.Add(acitest.Manifest{Name: "example.com/app", Labels: acitest.HostLabels("version", "1"), App: true}.JSON())
	f.Add(acitest.Manifest{Name: "example.com/app", Dependencies: []acitest.Dependency{{Name: "example.com/base", ImageID: acitest.ID(nil), Labels: []string{"version", "2"}}}, PathWhitelist: []string{"/etc/x"}}.JSON())
	f.Add([]byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","annotations":[[[[[[]]]]]]}`))
	f.Add([]byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","labels":[{"name":"os","value":"linux"},{"name":"arch","value":"sparc"}]}`))
	f.Add([]byte(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","app":{"exec":["/bin/sh"],"user":"0","group":"0","mountPoints":[{"name":"data","path":"../../etc"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := aci.ParseManifest(data)
		if err != nil {
			return
		}
		if m.Name.Empty() || m.ACKind != "ImageManifest" {
			t.Fatalf("accepted a manifest without name or kind: %q", data)
		}
		for _, p := range m.PathWhitelist {
			if !strings.HasPrefix(p, "/") {
				t.Fatalf("accepted relative pathWhitelist %q", p)
			}
		}
	})
}

// FuzzUnpack feeds archives to Unpack and checks that, whatever happens,
// nothing is written outside the destination.
func FuzzUnpack(f *testing.F) {
	f.Add(sampleImage())
	for _, h := range acitest.HostileImages("/outside") {
		if h.Limits == (aci.Limits{}) { // not the bombs: they are slow on purpose
			f.Add(h.Archive)
		}
	}
	f.Fuzz(func(t *testing.T, archive []byte) {
		base := t.TempDir()
		dest := filepath.Join(base, "dest")
		outside := filepath.Join(base, "outside")
		for _, d := range []string{dest, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// Symlinks in the seeds aim at /outside; make fuzzed ones that aim
		// at this outside directory likely too.
		archive = bytes.ReplaceAll(archive, []byte("/outside"), []byte(outside))
		_, _ = aci.Unpack(context.Background(), bytes.NewReader(archive), dest, aci.Options{
			Limits: aci.Limits{MaxImageBytes: 16 << 20, MaxEntries: 10000},
		})
		err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != base && p != dest && p != outside && !strings.HasPrefix(p, dest+"/") {
				t.Fatalf("written outside the destination: %s", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
