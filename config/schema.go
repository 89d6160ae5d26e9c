package config

import (
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"time"
)

// tagInfo is a field's `kurma` tag, read once.
type tagInfo struct {
	append   bool     // the list is extended by later layers
	key      []string // the list is merged by the first of these fields that is set
	required bool     // a list entry without this field is dropped
	check    string   // check of the value, or of each element or map value
	keycheck string   // check of each map key
	enum     []string // allowed values
}

func parseTag(s string) tagInfo {
	var t tagInfo
	for _, opt := range strings.Split(s, ",") {
		name, val, _ := strings.Cut(opt, "=")
		switch name {
		case "append":
			t.append = true
		case "key":
			t.key = strings.Split(val, "|")
		case "required":
			t.required = true
		case "check":
			t.check = val
		case "keycheck":
			t.keycheck = val
		case "enum":
			t.enum = strings.Split(val, "|")
		}
	}
	return t
}

// elem is the tag that applies to the elements of a list or the values of
// a map: the checks carry over, the merge options do not.
func (t tagInfo) elem() tagInfo {
	return tagInfo{check: t.check, keycheck: t.keycheck, enum: t.enum}
}

// field is one field of a schema struct.
type field struct {
	name  string // YAML key
	index int
	typ   reflect.Type
	tag   tagInfo
}

type structInfo struct {
	fields []*field
	byName map[string]*field
}

var structCache sync.Map // reflect.Type → *structInfo

func structOf(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]*field{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		f := &field{name: name, index: i, typ: sf.Type, tag: parseTag(sf.Tag.Get("kurma"))}
		si.fields = append(si.fields, f)
		si.byName[name] = f
	}
	structCache.Store(t, si)
	return si
}

// names lists the YAML keys of a struct, for suggestions.
func (si *structInfo) names() []string {
	n := make([]string, len(si.fields))
	for i, f := range si.fields {
		n[i] = f.name
	}
	return n
}

var (
	typeAddr     = reflect.TypeFor[netip.Addr]()
	typePrefix   = reflect.TypeFor[netip.Prefix]()
	typeDuration = reflect.TypeFor[time.Duration]()
	typeByteSize = reflect.TypeFor[ByteSize]()
)

// isLeaf reports whether values of t are written as one YAML scalar (or,
// for an interface, as any YAML value kept whole).
func isLeaf(t reflect.Type) bool {
	switch t {
	case typeAddr, typePrefix, typeDuration, typeByteSize:
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice:
		return false
	}
	return true
}
