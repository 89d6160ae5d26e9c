package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the values one layer may hold once its aliases are
// expanded, so that a document of nested aliases cannot take the machine.
const maxNodes = 100000

// walker checks one layer's YAML against the schema and builds its tree of
// nodes. A value that is wrong is reported and left out; the rest of the
// layer stays.
type walker struct {
	origin   Origin // layer and source; Line is set per value
	errs     []error
	budget   int
	visiting map[*yaml.Node]bool // aliases being expanded, to break cycles
}

func newWalker(layer, source string) *walker {
	return &walker{origin: Origin{Layer: layer, Source: source}, budget: maxNodes, visiting: map[*yaml.Node]bool{}}
}

func (w *walker) at(n *yaml.Node) Origin {
	o := w.origin
	o.Line = n.Line
	return o
}

func (w *walker) errorf(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, w.at(n).errorf(path, format, args...))
}

// walk checks n against type t and returns its node, or nil when n is
// null or wrong.
func (w *walker) walk(n *yaml.Node, t reflect.Type, tag tagInfo, path string) *node {
	if w.budget--; w.budget < 0 {
		if w.budget == -1 {
			w.errorf(n, path, "too many values (more than %d once aliases are expanded)", maxNodes)
		}
		return nil
	}
	if n.Kind == yaml.AliasNode {
		if w.visiting[n.Alias] {
			w.errorf(n, path, "alias *%s refers to itself", n.Value)
			return nil
		}
		w.visiting[n.Alias] = true
		defer delete(w.visiting, n.Alias)
		return w.walk(n.Alias, t, tag, path)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	replace := false
	switch {
	case n.Tag == "!replace":
		if n.Kind == yaml.ScalarNode || isLeaf(t) {
			w.errorf(n, path, "!replace applies to a list or a mapping")
			return nil
		}
		replace = true
	case strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!"):
		w.errorf(n, path, "unknown tag %s (the one tag Kurma knows is !replace)", n.Tag)
		return nil
	}
	var v *node
	switch {
	case t.Kind() == reflect.Interface:
		v = w.anyValue(n, t, path)
	case isLeaf(t):
		v = w.scalar(n, t, tag, path)
	case t.Kind() == reflect.Struct:
		v = w.object(n, path, func(k *yaml.Node, key string) (reflect.Type, tagInfo, bool) {
			f, ok := structOf(t).byName[key]
			if !ok {
				w.errorf(k, path, "unknown key %q%s", key, didYouMean(key, structOf(t).names()))
				return nil, tagInfo{}, false
			}
			return f.typ, f.tag, true
		})
		if v != nil && !w.required(n, t, v, path) {
			return nil
		}
	case t.Kind() == reflect.Map:
		v = w.object(n, path, func(k *yaml.Node, key string) (reflect.Type, tagInfo, bool) {
			if c := tag.keycheck; c != "" {
				if _, err := checks[c](key); err != nil {
					w.errorf(k, joinKey(path, key), "%v", err)
					return nil, tagInfo{}, false
				}
			}
			return t.Elem(), tag.elem(), true
		})
	case t.Kind() == reflect.Slice:
		v = w.list(n, t, tag, path)
	}
	if v != nil {
		v.replace = replace
	}
	return v
}

// pair is a key and its value in a mapping; merged is set for pairs that
// come from a YAML merge key (<<), which the mapping's own keys override.
type pair struct {
	key, value *yaml.Node
	merged     bool
}

// pairs lists the key/value pairs of a mapping, with those of its merge
// keys first.
func (w *walker) pairs(n *yaml.Node, path string, depth int) []pair {
	if depth > 10 {
		w.errorf(n, path, "merge keys nested too deep")
		return nil
	}
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			for _, m := range mergeSources(v) {
				if m.Kind != yaml.MappingNode {
					w.errorf(v, path, "a merge key (<<) takes a mapping or a list of mappings")
					continue
				}
				for _, p := range w.pairs(m, path, depth+1) {
					if w.budget--; w.budget < 0 {
						if w.budget == -1 {
							w.errorf(n, path, "too many values (more than %d once aliases are expanded)", maxNodes)
						}
						return nil
					}
					p.merged = true
					merged = append(merged, p)
				}
			}
			continue
		}
		own = append(own, pair{key: k, value: v})
	}
	return append(merged, own...)
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	resolve := func(n *yaml.Node) *yaml.Node {
		if n.Kind == yaml.AliasNode {
			return n.Alias
		}
		return n
	}
	v = resolve(v)
	if v.Kind == yaml.SequenceNode {
		out := make([]*yaml.Node, len(v.Content))
		for i, m := range v.Content {
			out[i] = resolve(m)
		}
		return out
	}
	return []*yaml.Node{v}
}

// object walks a mapping whose keys are given types by lookup.
func (w *walker) object(n *yaml.Node, path string, lookup func(k *yaml.Node, key string) (reflect.Type, tagInfo, bool)) *node {
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, "expected a mapping (key: value), got %s", describe(n))
		return nil
	}
	obj := newObject(w.at(n))
	seen := map[string]pair{}
	for _, p := range w.pairs(n, path, 0) {
		if p.key.Kind != yaml.ScalarNode {
			w.errorf(p.key, path, "a key must be a plain value, got %s", describe(p.key))
			continue
		}
		key := p.key.Value
		if first, dup := seen[key]; dup && !first.merged {
			w.errorf(p.key, joinKey(path, key), "duplicate key (first at line %d); this one is ignored", first.key.Line)
			continue
		}
		seen[key] = p
		t, tag, ok := lookup(p.key, key)
		if !ok {
			continue
		}
		if v := w.walk(p.value, t, tag, joinKey(path, key)); v != nil {
			obj.set(key, v)
		} else if _, had := obj.fields[key]; had {
			// A key of the mapping that is wrong or null also hides the
			// value a merge key gave it.
			delete(obj.fields, key)
			obj.keys = removeString(obj.keys, key)
		}
	}
	return obj
}

func removeString(list []string, s string) []string {
	out := list[:0:0]
	for _, e := range list {
		if e != s {
			out = append(out, e)
		}
	}
	return out
}

// required reports whether a struct has its required fields.
func (w *walker) required(n *yaml.Node, t reflect.Type, v *node, path string) bool {
	for _, f := range structOf(t).fields {
		if f.tag.required && v.fields[f.name] == nil {
			w.errorf(n, path, "%s is missing (every entry needs one); entry ignored", f.name)
			return false
		}
	}
	return true
}

func (w *walker) list(n *yaml.Node, t reflect.Type, tag tagInfo, path string) *node {
	if n.Kind != yaml.SequenceNode {
		w.errorf(n, path, "expected a list, got %s", describe(n))
		return nil
	}
	l := &node{kind: listNode, origin: w.at(n)}
	keys := map[string]int{}
	for i, e := range n.Content {
		p := joinIndex(path, i)
		v := w.walk(e, t.Elem(), tag.elem(), p)
		if v == nil {
			if e.Kind == yaml.ScalarNode && e.Tag == "!!null" {
				w.errorf(e, p, "empty entry")
			}
			continue
		}
		if len(tag.key) > 0 {
			k := listKey(v, tag.key)
			if k == "" {
				w.errorf(e, p, "%s is missing (entries are told apart by it); entry ignored", strings.Join(tag.key, " or "))
				continue
			}
			if first, dup := keys[k]; dup {
				w.errorf(e, p, "%q is already the %s of %s; entry ignored", k, tag.key[0], joinIndex(path, first))
				continue
			}
			keys[k] = i
		}
		l.items = append(l.items, v)
	}
	return l
}

// listKey is the key of an entry of a named list.
func listKey(v *node, fields []string) string {
	for _, f := range fields {
		if s := v.fields[f].text(); s != "" {
			return s
		}
	}
	return ""
}

// scalar converts a scalar to type t, then applies the field's checks.
func (w *walker) scalar(n *yaml.Node, t reflect.Type, tag tagInfo, path string) *node {
	if n.Kind != yaml.ScalarNode {
		w.errorf(n, path, "expected %s, got %s", kindName(t), describe(n))
		return nil
	}
	v, err := convert(n.Value, t, tag)
	if err != nil {
		w.errorf(n, path, "%v", err)
		return nil
	}
	return &node{kind: leafNode, value: v, origin: w.at(n)}
}

// convert parses s as a value of type t and checks it.
func convert(s string, t reflect.Type, tag tagInfo) (reflect.Value, error) {
	if tag.check != "" {
		c, err := checks[tag.check](s)
		if err != nil {
			return reflect.Value{}, err
		}
		s = c
	}
	if len(tag.enum) > 0 && !contains(tag.enum, s) {
		return reflect.Value{}, fmt.Errorf("%q is not one of %s", s, strings.Join(tag.enum, ", "))
	}
	v := reflect.New(t).Elem()
	switch t {
	case typeAddr:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return v, fmt.Errorf("%q is not an IP address", s)
		}
		v.Set(reflect.ValueOf(a))
		return v, nil
	case typePrefix:
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return v, fmt.Errorf("%q is not a CIDR address", s)
		}
		v.Set(reflect.ValueOf(p))
		return v, nil
	case typeDuration:
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return v, fmt.Errorf("%q is not a duration (e.g. 30s, 5m, 1h30m)", s)
		}
		v.SetInt(int64(d))
		return v, nil
	case typeByteSize:
		b, err := ParseByteSize(s)
		if err != nil {
			return v, err
		}
		v.SetInt(int64(b))
		return v, nil
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, ok := parseBool(s)
		if !ok {
			return v, fmt.Errorf("%q is not a boolean (true or false)", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return v, fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(i)
	default:
		return v, fmt.Errorf("cannot hold a %s", t)
	}
	return v, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// parseBool accepts what YAML and the kernel command line use.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// anyValue keeps a YAML value whole, as JSON-like Go values (isolators).
func (w *walker) anyValue(n *yaml.Node, t reflect.Type, path string) *node {
	if err := stringKeys(n, 0); err != nil {
		w.errorf(n, path, "%v", err)
		return nil
	}
	var x any
	if err := n.Decode(&x); err != nil {
		w.errorf(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil
	}
	x, err := jsonLike(x)
	if err != nil {
		w.errorf(n, path, "%v", err)
		return nil
	}
	v := reflect.New(t).Elem()
	if x != nil {
		v.Set(reflect.ValueOf(x))
	}
	return &node{kind: leafNode, value: v, origin: w.at(n)}
}

// stringKeys checks that the mappings of n have plain keys only.
func stringKeys(n *yaml.Node, depth int) error {
	if depth > 100 {
		return fmt.Errorf("nested too deep")
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && c.Kind != yaml.ScalarNode {
			return fmt.Errorf("keys of a mapping must be strings")
		}
		if err := stringKeys(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// jsonLike turns decoded YAML into values encoding/json can write: maps
// with string keys only.
func jsonLike(x any) (any, error) {
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			c, err := jsonLike(v)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case map[any]any:
		return nil, fmt.Errorf("keys of a mapping must be strings")
	case []any:
		for i, v := range x {
			c, err := jsonLike(v)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	}
	return x, nil
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

func kindName(t reflect.Type) string {
	switch t {
	case typeAddr:
		return "an IP address"
	case typePrefix:
		return "a CIDR address"
	case typeDuration:
		return "a duration"
	case typeByteSize:
		return "a size"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	}
	return "a value"
}
