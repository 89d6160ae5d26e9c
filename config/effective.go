package config

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
)

// Effective is the configuration in force once the layers are merged, with
// where each value came from.
type Effective struct {
	Config Config

	root    *node
	origins map[string]Origin // by path, for every value
	leaves  map[string]bool   // paths of values written whole
}

// Merge lays the layers over each other in order (see docs/config.md for
// the rules), then checks the rules that span fields and layers. A value
// that breaks one is reported and left out, so the result is always a
// configuration the boot can use. Nil layers are skipped.
func Merge(layers ...*Layer) (*Effective, []error) {
	var root *node
	var errs []error
	for _, l := range layers {
		if l == nil {
			continue
		}
		root = merge(root, l.root, configType, tagInfo{})
		if l.order != nil {
			var err []error
			root, err = applyOrder(root, l.order)
			errs = append(errs, err...)
		}
	}
	// Dropping a value can only remove problems, but one round may hide
	// another (an entry dropped for one reason had a second): go on until
	// a round is clean.
	for round := 0; ; round++ {
		e := &Effective{root: root, origins: map[string]Origin{}, leaves: map[string]bool{}}
		if root != nil {
			fill(root, reflect.ValueOf(&e.Config).Elem(), "", e.origins)
		}
		e.markLeaves(root, "")
		probs := validate(&e.Config)
		if len(probs) == 0 || round == 10 {
			return e, errs
		}
		for _, p := range probs {
			errs = append(errs, e.locate(p.path).errorf(p.path, "%s", p.msg))
			root = root.without(splitPath(p.drop))
		}
	}
}

func (e *Effective) markLeaves(n *node, path string) {
	if n == nil {
		return
	}
	switch n.kind {
	case leafNode:
		e.leaves[path] = true
	case objectNode:
		for _, k := range n.keys {
			e.markLeaves(n.fields[k], joinKey(path, k))
		}
	case listNode:
		for i, item := range n.items {
			e.markLeaves(item, joinIndex(path, i))
		}
	}
}

// locate is the origin of the value at path, or of the nearest value
// that holds it.
func (e *Effective) locate(path string) Origin {
	for p := path; ; {
		if o, ok := e.origins[p]; ok {
			return o
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return e.origins[""]
		}
		p = p[:i]
	}
}

// Origin returns where the value at path ("network.dns.servers[0]") was
// set.
func (e *Effective) Origin(path string) (Origin, bool) {
	o, ok := e.origins[path]
	return o, ok
}

// applyOrder applies kurma.datasources: the named datasources, in order,
// enabled; every other one disabled.
func applyOrder(root *node, order *datasourceOrder) (*node, []error) {
	var errs []error
	o := order.origin
	f := structOf(configType).byName["datasources"]
	var old []*node
	if root != nil && root.fields[f.name] != nil {
		old = root.fields[f.name].items
	}
	enabled := func(n *node, on bool) *node {
		set := newObject(o)
		set.set("enabled", leaf(reflect.ValueOf(on), o))
		return merge(n, set, f.typ.Elem(), tagInfo{})
	}
	list := &node{kind: listNode, origin: o, replace: true}
	used := map[int]bool{}
	for _, name := range order.names {
		found := -1
		for i, n := range old {
			if listKey(n, f.tag.key) == name {
				found = i
			}
		}
		switch {
		case found >= 0 && !used[found]:
			used[found] = true
			list.items = append(list.items, enabled(old[found], true))
		case found >= 0:
			errs = append(errs, o.errorf("", "%q is listed twice", name))
		case contains([]string{"url", "nocloud", "configdrive"}, name):
			n := newObject(o)
			n.set("kind", leaf(reflect.ValueOf(DatasourceKind(name)), o))
			list.items = append(list.items, enabled(n, true))
		default:
			var known []string
			for _, n := range old {
				known = append(known, listKey(n, f.tag.key))
			}
			errs = append(errs, o.errorf("", "%q is not a datasource (known: %s)", name, strings.Join(known, ", ")))
		}
	}
	for i, n := range old {
		if !used[i] {
			list.items = append(list.items, enabled(n, false))
		}
	}
	return merge(root, &node{kind: objectNode, keys: []string{f.name}, fields: map[string]*node{f.name: list}, origin: o}, configType, tagInfo{}), errs
}

// Validate checks the configuration file at path as the boot would read
// it, over the embedded defaults, and returns every problem found. It is
// `kurma config validate FILE`.
func Validate(path string) []error {
	l, errs := ReadFile(LayerInitrd, path)
	for _, err := range errs {
		if errors.Is(err, fs.ErrNotExist) {
			return errs
		}
	}
	_, merged := Merge(Defaults(), l)
	return append(errs, merged...)
}

// ValidateBytes checks a document as Validate does; source names it in
// the errors.
func ValidateBytes(source string, data []byte) []error {
	l, errs := Parse(LayerInitrd, source, data)
	_, merged := Merge(Defaults(), l)
	return append(errs, merged...)
}
