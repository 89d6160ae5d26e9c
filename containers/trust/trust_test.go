package trust_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kurmaos/kurma/containers/fetch/fetchtest"
	"github.com/kurmaos/kurma/containers/trust"
)

func TestKeysByPrefix(t *testing.T) {
	s, err := trust.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	app, all := fetchtest.NewKey(t, "app"), fetchtest.NewKey(t, "all")
	fp, err := s.Add("example.com/app", app.Public(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("*", all.Public(t)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want int
	}{
		{"example.com/app", 2},
		{"example.com/app/sub", 2},
		{"example.com/apple", 1},
		{"other.org/x", 1},
	}
	for _, tt := range tests {
		keys, err := s.Keys(tt.name)
		if err != nil || len(keys) != tt.want {
			t.Errorf("Keys(%s) = %d keys, %v; want %d", tt.name, len(keys), err, tt.want)
		}
	}
	data := []byte("image bytes")
	if _, err := s.Verify("example.com/app", bytes.NewReader(data), bytes.NewReader(app.Sign(t, data))); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if _, err := s.Verify("example.com/apple", bytes.NewReader(data), bytes.NewReader(app.Sign(t, data))); !errors.Is(err, trust.ErrBadSignature) {
		t.Errorf("Verify with a key of another prefix: %v", err)
	}
	if err := s.Remove("example.com/app", fp); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.Keys("example.com/app"); len(keys) != 1 {
		t.Errorf("after Remove: %d keys, want 1", len(keys))
	}
}

func TestAddRefuses(t *testing.T) {
	s, err := trust.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := fetchtest.NewKey(t, "k")
	two := append(k.Public(t), fetchtest.NewKey(t, "k2").Public(t)...)
	for name, tt := range map[string]struct {
		prefix string
		key    []byte
	}{
		"not a key":  {"example.com", []byte("hello")},
		"two keys":   {"example.com", two},
		"bad prefix": {"Example.com/../x", k.Public(t)},
	} {
		if _, err := s.Add(tt.prefix, tt.key); err == nil {
			t.Errorf("%s: Add succeeded", name)
		}
	}
	if _, err := s.Verify("example.com/x", bytes.NewReader(nil), bytes.NewReader(nil)); !errors.Is(err, trust.ErrNoKeys) {
		t.Errorf("Verify with no keys: %v", err)
	}
}
