package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds the YAML loader arbitrary documents: it must never
// panic, every error must be an *Error that names its source, and what it
// accepts must merge and render.
func FuzzParse(f *testing.F) {
	f.Add([]byte(defaultsYAML))
	f.Add([]byte("hostname: node\nnetwork: {interfaces: [{name: eth0, addresses: [10.0.0.1/24]}]}"))
	f.Add([]byte("a: &a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, errs := Parse(LayerInitrd, "fuzz.yaml", data)
		for _, err := range errs {
			var e *Error
			if !errors.As(err, &e) || e.Source != "fuzz.yaml" {
				t.Fatalf("error %v (%T) does not name its source", err, err)
			}
		}
		eff, errs := Merge(Defaults(), l)
		for _, err := range errs {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("merge error %v (%T) is not an *Error", err, err)
			}
		}
		var b bytes.Buffer
		if err := eff.Show(&b); err != nil {
			t.Fatalf("Show: %v", err)
		}
		if err := eff.Explain(&b); err != nil {
			t.Fatalf("Explain: %v", err)
		}
	})
}

// FuzzParseCmdline feeds the command line parser arbitrary text: it must
// never panic, splitting must keep UTF-8 whole, and every error must name
// the command line.
func FuzzParseCmdline(f *testing.F) {
	f.Add(`console=ttyS0 kurma.hostname="a b" kurma.debug kurma.network.dns=1.1.1.1`)
	f.Add(`"kurma.config.url=http://x/${mac}" kurma.datasources=url,nocloud --`)
	f.Add(`kurma.sysctls.net.ipv4.ip_forward=1 kurma.modules.parameters.e1000.copybreak=0`)
	f.Fuzz(func(t *testing.T, cmdline string) {
		args := SplitCmdline(cmdline)
		for _, a := range args {
			if utf8.ValidString(cmdline) && !utf8.ValidString(a.Key+a.Value) {
				t.Fatalf("split %q into invalid UTF-8", cmdline)
			}
		}
		l, errs := ParseCmdline(cmdline)
		for _, err := range errs {
			var e *Error
			if !errors.As(err, &e) || e.Source != "cmdline" || !strings.HasPrefix(e.Path, "kurma") {
				t.Fatalf("error %v does not name the command line and its key", err)
			}
		}
		if _, errs := Merge(Defaults(), l); len(errs) > 0 {
			for _, err := range errs {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("merge error %v (%T) is not an *Error", err, err)
				}
			}
		}
	})
}
