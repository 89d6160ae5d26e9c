package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"sync"

	"gopkg.in/yaml.v3"
)

// The names of the layers, in the order they apply.
const (
	LayerDefaults = "defaults"
	LayerInitrd   = "initrd"
	LayerOEM      = "oem"
	LayerCmdline  = "cmdline"
	// A datasource's layer is named "datasource " and the datasource's
	// name.
	LayerDatasource = "datasource"
)

// InitrdPath is where the initrd holds its configuration file.
const InitrdPath = "/etc/kurma/config.yaml"

// MaxSize bounds a configuration document, from any source.
const MaxSize = 1 << 20

// Layer is one source of configuration after it was checked: the values
// it sets, each with where it was written. Build layers with Parse, Read,
// ReadFile, ParseCmdline and Defaults; combine them with Merge.
type Layer struct {
	// Name is the layer, e.g. "initrd" or "datasource nocloud".
	Name string
	// Source is the file, URL or device it was read from.
	Source string

	root  *node
	order *datasourceOrder // kurma.datasources, on the command line only
}

var configType = reflect.TypeFor[Config]()

// Parse checks a YAML document against the schema and returns the layer
// of what is valid in it, with an error for each thing that is not. A
// document that is not YAML at all gives an empty layer and one error.
func Parse(name, source string, data []byte) (*Layer, []error) {
	l := &Layer{Name: name, Source: source}
	if len(data) > MaxSize {
		return l, []error{&Error{Source: source, Msg: fmt.Sprintf("larger than %d bytes; ignored", MaxSize)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return l, nil
		}
		return l, []error{yamlError(source, err)}
	}
	var errs []error
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		errs = append(errs, &Error{Source: source, Line: more.Line, Msg: "a second YAML document; only the first is read"})
	}
	w := newWalker(name, source)
	if len(doc.Content) == 1 {
		l.root = w.walk(doc.Content[0], configType, tagInfo{}, "")
	}
	return l, append(w.errs, errs...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a YAML syntax error into an Error with its line.
func yamlError(source string, err error) error {
	e := &Error{Source: source, Msg: err.Error() + "; the whole file is ignored"}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2] + " (YAML syntax); the whole file is ignored"
	}
	return e
}

// Read reads a YAML document of at most MaxSize bytes from r and parses
// it as Parse does.
func Read(name, source string, r io.Reader) (*Layer, []error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return &Layer{Name: name, Source: source}, []error{&Error{Source: source, Msg: err.Error()}}
	}
	return Parse(name, source, data)
}

// ReadFile reads and parses the file at path. A missing file is an error
// that matches fs.ErrNotExist.
func ReadFile(name, path string) (*Layer, []error) {
	f, err := os.Open(path)
	if err != nil {
		return &Layer{Name: name, Source: path}, []error{err}
	}
	defer f.Close()
	return Read(name, path, f)
}

//go:embed defaults.yaml
var defaultsYAML []byte

var defaults = sync.OnceValues(func() (*Layer, []error) {
	return Parse(LayerDefaults, "defaults.yaml", defaultsYAML)
})

// Defaults returns the layer of the defaults embedded in the binary. A
// test proves they are valid.
func Defaults() *Layer {
	l, _ := defaults()
	return l
}

// DefaultsYAML returns the text of the embedded defaults.
func DefaultsYAML() []byte { return bytes.Clone(defaultsYAML) }
