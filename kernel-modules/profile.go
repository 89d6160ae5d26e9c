package kmod

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed profiles/*.yaml
var profileFS embed.FS

// ErrUnknownProfile is returned for a profile name with no definition.
var ErrUnknownProfile = errors.New("unknown module profile")

// A Profile is the set of modules one environment (QEMU, bare metal, a
// cloud) needs. Load modules are inserted at every boot; Match modules are
// inserted only when a device present at boot has a modalias that one of
// their aliases matches (cold plug); Ship modules are only shipped, for
// loading on demand (a filesystem by its fs-TYPE alias when it is
// mounted). Entries are module names (Load also takes aliases);
// dependencies, hard and soft, come from the module tree's index.
type Profile struct {
	Name        string   `yaml:"-"`
	Description string   `yaml:"description"`
	Load        []string `yaml:"load"`
	Match       []string `yaml:"match"`
	Ship        []string `yaml:"ship"`
}

// LoadProfile returns the named profile built into Kurma.
func LoadProfile(name string) (*Profile, error) {
	data, err := profileFS.ReadFile("profiles/" + name + ".yaml")
	if errors.Is(err, fs.ErrNotExist) || strings.ContainsAny(name, "/.") {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownProfile, name, strings.Join(ProfileNames(), ", "))
	}
	if err != nil {
		return nil, err
	}
	return ParseProfile(name, data)
}

// ParseProfile reads a profile definition.
func ParseProfile(name string, data []byte) (*Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("module profile %s: %w", name, err)
	}
	p.Name = name
	return &p, nil
}

// ProfileNames lists the profiles built into Kurma, sorted.
func ProfileNames() []string {
	entries, _ := profileFS.ReadDir("profiles") // embedded: cannot fail
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Modules returns every module the profile can insert with the index's
// tree: the closure of its Load, Match and Ship entries. A name the tree does
// not have is an error: the image would miss a driver.
func (p *Profile) Modules(ix *Index) ([]string, error) {
	var all []string
	all = append(append(append(all, p.Load...), p.Match...), p.Ship...)
	mods, err := ix.Closure(all...)
	if err != nil {
		return nil, fmt.Errorf("module profile %s: %w", p.Name, err)
	}
	return mods, nil
}
