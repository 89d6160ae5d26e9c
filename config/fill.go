package config

import (
	"reflect"
)

// defaulter is a list entry with values of its own when a layer does not
// set them (a new datasource is enabled, a container is a service).
type defaulter interface{ setDefaults() }

// fill sets v from the tree n and records the origin of every value by
// its path.
func fill(n *node, v reflect.Value, path string, origins map[string]Origin) {
	if n == nil {
		return
	}
	origins[path] = n.origin
	switch n.kind {
	case leafNode:
		if n.value.IsValid() {
			v.Set(n.value)
		}
	case objectNode:
		switch v.Kind() {
		case reflect.Struct:
			si := structOf(v.Type())
			for _, k := range n.keys {
				fill(n.fields[k], v.Field(si.byName[k].index), joinKey(path, k), origins)
			}
		case reflect.Map:
			m := reflect.MakeMapWithSize(v.Type(), len(n.keys))
			for _, k := range n.keys {
				e := reflect.New(v.Type().Elem()).Elem()
				fill(n.fields[k], e, joinKey(path, k), origins)
				m.SetMapIndex(reflect.ValueOf(k), e)
			}
			v.Set(m)
		}
	case listNode:
		s := reflect.MakeSlice(v.Type(), len(n.items), len(n.items))
		for i, item := range n.items {
			e := s.Index(i)
			p := joinIndex(path, i)
			if d, ok := e.Addr().Interface().(defaulter); ok {
				d.setDefaults()
				markDefaults(e, p, origins)
			}
			fill(item, e, p, origins)
		}
		v.Set(s)
	}
}

// markDefaults records the origin of the values an entry has of its own.
func markDefaults(v reflect.Value, path string, origins map[string]Origin) {
	if v.Kind() != reflect.Struct || v.Type() == typeAddr || v.Type() == typePrefix {
		if !v.IsZero() {
			origins[path] = Origin{Layer: "defaults"}
		}
		return
	}
	for _, f := range structOf(v.Type()).fields {
		markDefaults(v.Field(f.index), joinKey(path, f.name), origins)
	}
}
