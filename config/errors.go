package config

import (
	"fmt"
	"strconv"
)

// Error is a configuration problem: where it is (the source, the line in
// it, the field) and what is wrong. Its text reads
//
//	config: /etc/kurma/config.yaml:14: network.interfaces[0].address: "10.0.0.1/33" is not a CIDR address
type Error struct {
	// Source is a file path, a URL, or "cmdline".
	Source string
	// Line is the line in Source, or 0 when there is none.
	Line int
	// Path is the field, "network.interfaces[0].address", or for the
	// command line the key, "kurma.network.dns".
	Path string
	// Msg says what is wrong and what is expected.
	Msg string
}

func (e *Error) Error() string {
	s := "config: "
	if e.Source != "" {
		s += e.Source
		if e.Line > 0 {
			s += ":" + strconv.Itoa(e.Line)
		}
		s += ": "
	}
	if e.Path != "" {
		s += e.Path + ": "
	}
	return s + e.Msg
}

// Origin says where an effective value was set.
type Origin struct {
	// Layer is "defaults", "initrd", "oem", "cmdline", or "datasource
	// NAME".
	Layer string
	// Source is the file path, URL or device the layer was read from.
	Source string
	// Line is the line in Source, 0 when there is none.
	Line int
	// Key is the command line key that set the value.
	Key string
}

func (o Origin) String() string {
	s := o.Layer
	switch {
	case o.Key != "":
		s += " " + o.Key
	case o.Source != "" && o.Line > 0:
		s += fmt.Sprintf(" %s:%d", o.Source, o.Line)
	case o.Source != "":
		s += " " + o.Source
	}
	return s
}

// errorf is a problem with a value of this origin; a value from the
// command line is named by its key rather than its path.
func (o Origin) errorf(path, format string, args ...any) *Error {
	e := &Error{Source: o.Source, Line: o.Line, Path: path, Msg: fmt.Sprintf(format, args...)}
	if o.Key != "" {
		e.Path = o.Key
	}
	return e
}
