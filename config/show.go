package config

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

// Show writes the effective configuration as YAML, each value followed by
// a comment naming the layer that set it:
//
//	hostname: node-1 # cmdline kurma.hostname
//	network:
//	  dns:
//	    servers:
//	      - 1.1.1.1 # initrd /etc/kurma/config.yaml:7
//
// Values that no layer set are left out. It is `kurma config show`.
func (e *Effective) Show(w io.Writer) error {
	doc, err := e.annotated()
	if err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("show configuration: %w", err)
	}
	return enc.Close()
}

// Explain writes a table of every effective value: its path, its value
// and the layer that set it. It is `kurma config show --explain`.
func (e *Effective) Explain(w io.Writer) error {
	doc, err := e.annotated()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tVALUE\tSET BY")
	var rows func(n *yaml.Node, path string)
	rows = func(n *yaml.Node, path string) {
		if e.leaves[path] || len(n.Content) == 0 {
			v, _ := yaml.Marshal(n)
			val := strings.TrimSpace(string(v))
			if i := strings.Index(val, " #"); i >= 0 && n.Kind == yaml.ScalarNode {
				val = val[:i]
			}
			if n.Kind != yaml.ScalarNode {
				val = strings.ReplaceAll(strings.TrimSpace(flow(n)), "\n", " ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", path, val, e.origins[path])
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				rows(n.Content[i+1], joinKey(path, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				rows(c, joinIndex(path, i))
			}
		}
	}
	rows(doc, "")
	return tw.Flush()
}

// flow writes a node on one line, without comments.
func flow(n *yaml.Node) string {
	c := *n
	c.Style = yaml.FlowStyle
	c.LineComment = ""
	b, err := yaml.Marshal(&c)
	if err != nil {
		return ""
	}
	return string(b)
}

// annotated is the effective configuration as a YAML tree of the values
// that layers set, each commented with its origin.
func (e *Effective) annotated() (*yaml.Node, error) {
	var doc yaml.Node
	if err := doc.Encode(&e.Config); err != nil {
		return nil, fmt.Errorf("show configuration: %w", err)
	}
	if !e.prune(&doc, "") {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	return &doc, nil
}

// prune removes from n what no layer set and comments the rest; it
// reports whether anything of n is left.
func (e *Effective) prune(n *yaml.Node, path string) bool {
	o, set := e.origins[path]
	if e.leaves[path] {
		n.LineComment = o.String()
		if n.Kind != yaml.ScalarNode {
			n.Style = yaml.FlowStyle
		}
		return set
	}
	kept := false
	switch n.Kind {
	case yaml.MappingNode:
		var content []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if e.prune(v, joinKey(path, k.Value)) {
				content = append(content, k, v)
			}
		}
		n.Content, kept = content, len(content) > 0
	case yaml.SequenceNode:
		var content []*yaml.Node
		for i, c := range n.Content {
			if e.prune(c, joinIndex(path, i)) {
				content = append(content, c)
			}
		}
		n.Content, kept = content, len(content) > 0
	case yaml.ScalarNode:
		if set {
			n.LineComment = o.String()
		}
		return set
	}
	if !kept && set && path != "" {
		n.Style = yaml.FlowStyle
		n.LineComment = o.String()
		return true
	}
	return kept
}
