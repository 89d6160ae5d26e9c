package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// The kernel command line sets values with kurma.* keys. Every scalar
// field is a key: its YAML path joined by dots
// (kurma.services.console.ssh_port=2222). A list of scalars takes one
// value per repeated key; a map takes the rest of the key as its key
// (kurma.sysctls.net.ipv4.ip_forward=1). Three keys are shortcuts:
//
//	kurma.config.url=URL     enables the url datasource with this URL
//	kurma.datasources=a,b    these datasources, in this order; no others
//	kurma.network.dns=ADDR   a DNS server (repeat for more)
//
// As in the kernel, '-' and '_' are the same in a key, a key given twice
// keeps its last value (lists keep all), and a bare key is a boolean true.

const cmdlineSource = "cmdline"

// CmdlineArg is one word of the kernel command line, split and unquoted as
// the kernel does.
type CmdlineArg struct {
	Key    string
	Value  string
	HasVal bool // the word had an '='
}

// SplitCmdline splits a kernel command line into its words the way the
// kernel's next_arg does: words are separated by spaces; double quotes
// group spaces into a word and are removed around a value or a whole word
// ("kurma.hostname=a b" and kurma.hostname="a b" are the same).
func SplitCmdline(s string) []CmdlineArg {
	var args []CmdlineArg
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	for s != "" {
		inQuote, quoted := false, false
		if s[0] == '"' {
			s = s[1:]
			inQuote, quoted = true, true
		}
		i, equals := 0, -1
		for ; i < len(s); i++ {
			if isSpace(s[i]) && !inQuote {
				break
			}
			if equals < 0 && s[i] == '=' {
				equals = i
			}
			if s[i] == '"' {
				inQuote = !inQuote
			}
		}
		word := s[:i]
		// The kernel ends the word one byte early when it ends in a quote
		// that opened the word or its value.
		endQuote := i > 0 && s[i-1] == '"'
		var a CmdlineArg
		if equals < 0 {
			a.Key = word
			if quoted && endQuote {
				a.Key = word[:len(word)-1]
			}
		} else {
			a.Key, a.Value, a.HasVal = word[:equals], word[equals+1:], true
			valQuoted := strings.HasPrefix(a.Value, `"`)
			if valQuoted {
				a.Value = a.Value[1:]
			}
			if (valQuoted || quoted) && endQuote && strings.HasSuffix(a.Value, `"`) && equals+1 < i-1 {
				a.Value = a.Value[:len(a.Value)-1]
			}
		}
		args = append(args, a)
		s = strings.TrimLeft(s[i:], " \t\n\v\f\r")
	}
	return args
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// datasourceOrder is kurma.datasources: the datasources to use, in order.
type datasourceOrder struct {
	names  []string
	origin Origin
}

// ParseCmdline returns the layer of the kurma.* keys of a kernel command
// line (the text of /proc/cmdline). Other words are the kernel's and are
// ignored; an unknown kurma.* key or a bad value is an error and is left
// out.
//
// Keys under TestCmdlinePrefix are left alone: they are switches of the
// test suite read by the boot itself, not configuration.
func ParseCmdline(cmdline string) (*Layer, []error) {
	l := &Layer{Name: LayerCmdline, Source: cmdlineSource}
	var errs []error
	lists := map[string]*node{}
	for _, a := range SplitCmdline(cmdline) {
		key := strings.ReplaceAll(a.Key, "-", "_")
		if !strings.HasPrefix(key, "kurma.") && key != "kurma" {
			continue
		}
		if strings.HasPrefix(key, TestCmdlinePrefix) {
			continue // switches of the test suite, not configuration
		}
		o := Origin{Layer: LayerCmdline, Source: cmdlineSource, Key: a.Key}
		fail := func(format string, args ...any) {
			errs = append(errs, o.errorf("", format, args...))
		}
		if l.root == nil {
			l.root = newObject(o)
		}
		switch key {
		case "kurma.config.url":
			v, err := convert(a.Value, reflect.TypeFor[string](), tagInfo{check: "urltemplate"})
			if err != nil {
				fail("%v", err)
				continue
			}
			ds := newObject(o)
			ds.set("name", leaf(reflect.ValueOf(string(DatasourceURL)), o))
			ds.set("kind", leaf(reflect.ValueOf(DatasourceURL), o))
			ds.set("enabled", leaf(reflect.ValueOf(true), o))
			ds.set("url", leaf(v, o))
			f := structOf(configType).byName["datasources"]
			list := &node{kind: listNode, items: []*node{ds}, origin: o}
			l.root.set(f.name, merge(l.root.fields[f.name], list, f.typ, f.tag))
			continue
		case "kurma.datasources":
			var names []string
			for _, n := range strings.Split(a.Value, ",") {
				if n = strings.TrimSpace(n); n != "" {
					names = append(names, n)
				}
			}
			l.order = &datasourceOrder{names: names, origin: o}
			continue
		case "kurma.network.dns":
			key = "kurma.network.dns.servers"
		}
		t, tag, at, err := resolveKey(strings.TrimPrefix(key, "kurma."))
		if err != nil {
			fail("%v", err)
			continue
		}
		value := a.Value
		if !a.HasVal {
			if t.Kind() != reflect.Bool {
				fail("needs a value (%s=VALUE)", a.Key)
				continue
			}
			value = "true"
		}
		elem := t
		if t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		v, err := convert(value, elem, tag.elem())
		if err != nil {
			fail("%v", err)
			continue
		}
		parent := l.root
		for _, seg := range at[:len(at)-1] {
			next := parent.fields[seg]
			if next == nil {
				next = newObject(o)
				parent.set(seg, next)
			}
			parent = next
		}
		last := at[len(at)-1]
		if t.Kind() == reflect.Slice {
			p := strings.Join(at, "\x00")
			if lists[p] == nil {
				lists[p] = &node{kind: listNode, origin: o}
				parent.set(last, lists[p])
			}
			lists[p].items = append(lists[p].items, leaf(v, o))
			continue
		}
		parent.set(last, leaf(v, o))
	}
	return l, errs
}

func leaf(v reflect.Value, o Origin) *node { return &node{kind: leafNode, value: v, origin: o} }

// resolveKey finds the field a command line key (without "kurma.") sets:
// its type, its tag and its path of YAML keys.
func resolveKey(key string) (reflect.Type, tagInfo, []string, error) {
	segs := strings.Split(key, ".")
	t, tag := configType, tagInfo{}
	var at []string
	for i := 0; i < len(segs); i++ {
		seg := segs[i]
		switch {
		case t.Kind() == reflect.Struct && !isLeaf(t):
			f, ok := structOf(t).byName[seg]
			if !ok {
				return nil, tag, nil, unknownKey(key)
			}
			t, tag = f.typ, f.tag
			at = append(at, seg)
		case t.Kind() == reflect.Map:
			k := seg
			if isLeaf(t.Elem()) || t.Elem().Kind() == reflect.Slice {
				// A map of values takes the rest of the key as its key:
				// kurma.sysctls.net.ipv4.ip_forward.
				k = strings.Join(segs[i:], ".")
				i = len(segs) - 1
			}
			if tag.keycheck != "" {
				if _, err := checks[tag.keycheck](k); err != nil {
					return nil, tag, nil, err
				}
			}
			t, tag = t.Elem(), tag.elem()
			at = append(at, k)
		default:
			return nil, tag, nil, unknownKey(key)
		}
	}
	switch {
	case t.Kind() == reflect.Slice && !isLeaf(t.Elem()):
		return nil, tag, nil, fmt.Errorf("is a list of entries and cannot be set on the command line; use a config file or a datasource")
	case !isLeaf(t) && t.Kind() != reflect.Slice:
		return nil, tag, nil, fmt.Errorf("is a section, not a value; name one of its keys (%s)", strings.Join(cmdlineKeysUnder("kurma."+key), ", "))
	}
	return t, tag, at, nil
}

func unknownKey(key string) error {
	return fmt.Errorf("unknown key%s", didYouMean("kurma."+key, CmdlineKeys()))
}

// CmdlineKeys lists the kurma.* keys of the command line, sorted. Maps are
// written with their key as NAME: kurma.sysctls.NAME.
func CmdlineKeys() []string {
	keys := []string{"kurma.config.url", "kurma.datasources", "kurma.network.dns"}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		switch {
		case isLeaf(t) || (t.Kind() == reflect.Slice && isLeaf(t.Elem())):
			keys = append(keys, prefix)
		case t.Kind() == reflect.Struct:
			for _, f := range structOf(t).fields {
				walk(f.typ, prefix+"."+f.name)
			}
		case t.Kind() == reflect.Map:
			walk(t.Elem(), prefix+".NAME")
		}
	}
	walk(configType, "kurma")
	sort.Strings(keys)
	return keys
}

func cmdlineKeysUnder(prefix string) []string {
	var out []string
	for _, k := range CmdlineKeys() {
		if strings.HasPrefix(k, prefix+".") {
			out = append(out, k)
		}
	}
	return out
}

// TestCmdlinePrefix starts the command line keys reserved for the test
// suite (kurma.test.fail-phase=NAME).
const TestCmdlinePrefix = "kurma.test."
