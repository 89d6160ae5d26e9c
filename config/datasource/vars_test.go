package datasource

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSubstitute(t *testing.T) {
	vars := Vars{"mac": "52:54:00:12:34:56", "uuid": "abc", "hostname": "node 1/a"}
	for _, tc := range []struct{ in, want, err string }{
		{"http://x/", "http://x/", ""},
		{"http://x/${mac}", "http://x/52:54:00:12:34:56", ""},
		{"http://x/${uuid}/${hostname}?m=${mac}", "http://x/abc/node%201%2Fa?m=52:54:00:12:34:56", ""},
		{"http://x/$mac/$${mac}", "http://x/$mac/$52:54:00:12:34:56", ""},
		{"http://x/${serial}", "", "unknown variable ${serial} (known: ${hostname}, ${mac}, ${uuid})"},
		{"http://x/${mac", "", `unterminated "${" (write ${name} with one of ${hostname}, ${mac}, ${uuid})`},
		{"http://x/${}", "", "unknown variable ${} (known: ${hostname}, ${mac}, ${uuid})"},
	} {
		got, err := Substitute(tc.in, vars)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Substitute(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Substitute(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSystemVars(t *testing.T) {
	sys := t.TempDir()
	p := filepath.Join(sys, "class/dmi/id/product_uuid")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("4C4C4544-0042-3510-8052-B4C04F4A4E32\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v := SystemVars(sys)
	if got, want := v["uuid"], "4c4c4544-0042-3510-8052-b4c04f4a4e32"; got != want {
		t.Errorf("uuid = %q, want %q", got, want)
	}
	for _, k := range []string{"mac", "hostname"} {
		if _, ok := v[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
}
