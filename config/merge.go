package config

import "reflect"

// merge lays src over dst, both trees of values of type t, and returns the
// result without changing either. The rules, documented in
// docs/config.md:
//
//   - a value (scalar) of src replaces dst's;
//   - objects (mappings of fields, and maps such as env and sysctls) are
//     merged key by key;
//   - lists tagged append are dst's entries followed by src's that dst
//     lacks;
//   - lists tagged key=FIELD are merged by that field: an entry of src
//     with a name dst has is merged onto it in place, others are appended;
//   - other lists are replaced whole;
//   - a list or mapping tagged !replace in the YAML replaces dst's whole.
func merge(dst, src *node, t reflect.Type, tag tagInfo) *node {
	switch {
	case dst == nil:
		return src
	case src == nil:
		return dst
	case src.replace || src.kind != dst.kind || src.kind == leafNode:
		return src
	}
	out := *src
	out.replace = false
	switch src.kind {
	case objectNode:
		out.keys = append([]string(nil), dst.keys...)
		out.fields = make(map[string]*node, len(dst.fields)+len(src.fields))
		for k, v := range dst.fields {
			out.fields[k] = v
		}
		for _, k := range src.keys {
			ft, ftag := t, tagInfo{}
			if t.Kind() == reflect.Struct {
				f := structOf(t).byName[k]
				ft, ftag = f.typ, f.tag
			} else {
				ft, ftag = t.Elem(), tag.elem()
			}
			if _, ok := dst.fields[k]; !ok {
				out.keys = append(out.keys, k)
			}
			out.fields[k] = merge(dst.fields[k], src.fields[k], ft, ftag)
		}
	case listNode:
		switch {
		case tag.append:
			out.items = append([]*node(nil), dst.items...)
			for _, s := range src.items {
				if !hasItem(dst.items, s) {
					out.items = append(out.items, s)
				}
			}
		case len(tag.key) > 0:
			out.items = append([]*node(nil), dst.items...)
			at := map[string]int{}
			for i, d := range dst.items {
				at[listKey(d, tag.key)] = i
			}
			for _, s := range src.items {
				if i, ok := at[listKey(s, tag.key)]; ok {
					out.items[i] = merge(dst.items[i], s, t.Elem(), tagInfo{})
				} else {
					out.items = append(out.items, s)
				}
			}
		}
	}
	return &out
}

// hasItem reports whether a list holds a leaf equal to s.
func hasItem(items []*node, s *node) bool {
	if s.kind != leafNode {
		return false
	}
	for _, i := range items {
		if i.kind == leafNode && i.text() == s.text() {
			return true
		}
	}
	return false
}
