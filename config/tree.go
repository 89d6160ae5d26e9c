package config

import (
	"encoding"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// A node is one value of a layer after it was checked against the schema:
// what the layer says, with the origin of every part. Layers are merged as
// trees of nodes, then the merged tree fills a Config. Nodes are never
// changed once built, so a layer can be merged any number of times.
type node struct {
	kind    nodeKind
	value   reflect.Value    // leaf: the value, of the field's type
	keys    []string         // object: keys in order
	fields  map[string]*node // object: fields of a struct or entries of a map
	items   []*node          // list
	origin  Origin
	replace bool // tagged !replace: replaces what earlier layers set
}

type nodeKind int

const (
	leafNode nodeKind = iota
	objectNode
	listNode
)

func newObject(o Origin) *node {
	return &node{kind: objectNode, fields: map[string]*node{}, origin: o}
}

// set adds or replaces a field of an object node.
func (n *node) set(key string, v *node) {
	if _, ok := n.fields[key]; !ok {
		n.keys = append(n.keys, key)
	}
	n.fields[key] = v
}

// text is the string form of a leaf, for keys of named lists and for
// comparing list elements.
func (n *node) text() string {
	if n == nil || n.kind != leafNode {
		return ""
	}
	v := n.value.Interface()
	if m, ok := v.(encoding.TextMarshaler); ok {
		if b, err := m.MarshalText(); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}

// without returns a copy of the tree with the value at path removed.
func (n *node) without(path []string) *node {
	if n == nil || len(path) == 0 {
		return nil
	}
	c := *n
	switch n.kind {
	case objectNode:
		k := path[0]
		if _, ok := n.fields[k]; !ok {
			return n
		}
		c.fields = make(map[string]*node, len(n.fields))
		c.keys = nil
		for _, key := range n.keys {
			v := n.fields[key]
			if key == k {
				if v = v.without(path[1:]); v == nil {
					continue
				}
			}
			c.keys = append(c.keys, key)
			c.fields[key] = v
		}
	case listNode:
		i, err := strconv.Atoi(path[0])
		if err != nil || i < 0 || i >= len(n.items) {
			return n
		}
		c.items = nil
		for j, v := range n.items {
			if j == i {
				if v = v.without(path[1:]); v == nil {
					continue
				}
			}
			c.items = append(c.items, v)
		}
	}
	return &c
}

// Paths name values the way errors show them:
// network.interfaces[0].address, sysctls["net.ipv4.ip_forward"].

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func joinKey(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func joinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// splitPath is the inverse of joinKey and joinIndex: the keys and indexes
// of a path, in order.
func splitPath(p string) []string {
	var segs []string
	for p != "" {
		switch {
		case p[0] == '.':
			p = p[1:]
		case strings.HasPrefix(p, `["`):
			q, err := strconv.QuotedPrefix(p[1:])
			if err != nil {
				return append(segs, p)
			}
			k, _ := strconv.Unquote(q)
			segs = append(segs, k)
			p = strings.TrimPrefix(p[1+len(q):], "]")
		case p[0] == '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return append(segs, p)
			}
			segs = append(segs, p[1:end])
			p = p[end+1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			segs = append(segs, p[:end])
			p = p[end:]
		}
	}
	return segs
}
