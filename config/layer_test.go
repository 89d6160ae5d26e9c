package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadOEMFromReader(t *testing.T) {
	l, errs := Read(LayerOEM, "LABEL=KURMA-OEM:/config.yaml", strings.NewReader("hostname: oem\nmodules: {extra: [e1000e]}\n"))
	if len(errs) > 0 {
		t.Fatal(errStrings(errs))
	}
	eff := mergeOK(t, l)
	if o, _ := eff.Origin("hostname"); o.String() != "oem LABEL=KURMA-OEM:/config.yaml:1" {
		t.Errorf("origin = %q", o)
	}
	_, errs = Read(LayerOEM, "big.yaml", strings.NewReader(strings.Repeat("#", MaxSize+1)))
	if got, want := errStrings(errs), "config: big.yaml: larger than 1048576 bytes; ignored"; got != want {
		t.Errorf("errors = %s, want %s", got, want)
	}
}

func TestMissingFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yaml")
	if errs := Validate(missing); len(errs) != 1 || !errors.Is(errs[0], fs.ErrNotExist) {
		t.Errorf("Validate(missing) = %v, want not exist", errs)
	}
	// A missing initrd file is not an error for the boot.
	ld := NewLoader(Sources{InitrdFile: missing, Env: DatasourceEnv{Vars: testVars, Finder: noVolumes}})
	if eff, errs := ld.Effective(); len(errs) > 0 || eff.Config.Shutdown != "reboot" {
		t.Errorf("shutdown %q (the default is reboot), errors %s", eff.Config.Shutdown, errStrings(errs))
	}
}

func TestNoDatasources(t *testing.T) {
	l, errs := ParseCmdline("kurma.datasources=")
	if len(errs) > 0 {
		t.Fatal(errStrings(errs))
	}
	for _, d := range mergeOK(t, l).Config.Datasources {
		if d.Enabled {
			t.Errorf("%s enabled, want every datasource off", d.key())
		}
	}
}

func TestEmptyDocument(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		l, errs := Parse(LayerInitrd, "empty.yaml", []byte(doc))
		if len(errs) > 0 {
			t.Errorf("%q: %s", doc, errStrings(errs))
		}
		if c := mergeOK(t, l).Config; c.Shutdown != "reboot" {
			t.Errorf("%q: shutdown %q, want the default reboot", doc, c.Shutdown)
		}
	}
}
