package config

import (
	"strings"
	"testing"
)

// parse parses a layer and fails the test on any error.
func parse(t *testing.T, name, yaml string) *Layer {
	t.Helper()
	l, errs := Parse(name, name+".yaml", []byte(yaml))
	for _, err := range errs {
		t.Errorf("parse %s: %v", name, err)
	}
	return l
}

// mergeOK merges layers over the defaults and fails the test on any
// error.
func mergeOK(t *testing.T, layers ...*Layer) *Effective {
	t.Helper()
	eff, errs := Merge(append([]*Layer{Defaults()}, layers...)...)
	for _, err := range errs {
		t.Errorf("merge: %v", err)
	}
	return eff
}

func errStrings(errs []error) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "\n")
}
