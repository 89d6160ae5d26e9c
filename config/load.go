package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"time"

	"github.com/kurmaos/kurma/config/datasource"
	"github.com/kurmaos/kurma/config/volume"
)

// Defaults of the datasources' options.
const (
	DefaultURLTimeout = 60 * time.Second
	LabelNoCloud      = "cidata"
	LabelConfigDrive  = "config-2"
)

// NeedsNetwork reports whether the datasource is reached over the network,
// so must wait for the network phase.
func (d *Datasource) NeedsNetwork() bool { return d.Kind == DatasourceURL }

// DatasourceEnv is what datasources need from the machine. Zero fields
// mean the real thing.
type DatasourceEnv struct {
	Client *http.Client
	// Vars are substituted in URLs; nil reads them from the machine.
	// ${hostname} is the configured hostname when Vars has none.
	Vars   datasource.Vars
	Finder volume.Finder
	Clock  datasource.Clock
}

// DatasourceError is a datasource that failed: unreachable, or its volume
// unreadable. The boot goes on without it.
type DatasourceError struct {
	Name   string
	Source string
	Err    error
}

func (e *DatasourceError) Error() string {
	return fmt.Sprintf("config: datasource %s: %s: %v; skipped", e.Name, e.Source, e.Err)
}

func (e *DatasourceError) Unwrap() error { return e.Err }

// DatasourceResult is what became of one datasource.
type DatasourceResult struct {
	Name   string
	Source string
	// Layer is the configuration it gave, nil when it gave none.
	Layer *Layer
	// Absent is set when the datasource is not on this machine (no
	// volume with its label): not a failure.
	Absent bool
	// Errors are its failure (a *DatasourceError) or the problems in its
	// document (*Error).
	Errors []error
	Took   time.Duration
}

func (r DatasourceResult) String() string {
	switch {
	case r.Layer != nil && len(r.Errors) == 0:
		return fmt.Sprintf("datasource %s: read %s in %s", r.Name, r.Source, r.Took.Round(time.Millisecond))
	case r.Layer != nil:
		return fmt.Sprintf("datasource %s: read %s in %s, with %d errors", r.Name, r.Source, r.Took.Round(time.Millisecond), len(r.Errors))
	case r.Absent:
		return fmt.Sprintf("datasource %s: not present", r.Name)
	}
	return fmt.Sprintf("datasource %s: failed after %s", r.Name, r.Took.Round(time.Millisecond))
}

// RunDatasources runs the enabled datasources of list in order and
// returns what each gave. A failed or broken datasource is reported and
// skipped. A datasource's document may not configure datasources: its
// datasources section is reported and left out.
func RunDatasources(ctx context.Context, list []Datasource, env DatasourceEnv) []DatasourceResult {
	var out []DatasourceResult
	for _, d := range list {
		if !d.Enabled {
			continue
		}
		out = append(out, runDatasource(ctx, d, env))
	}
	return out
}

func runDatasource(ctx context.Context, d Datasource, env DatasourceEnv) DatasourceResult {
	clock := env.Clock
	if clock.Now == nil {
		clock = datasource.RealClock
	}
	start := clock.Now()
	name := d.key()
	var fetcher interface {
		Fetch(context.Context) (datasource.Document, error)
	}
	switch d.Kind {
	case DatasourceURL:
		timeout := d.Timeout
		if timeout == 0 {
			timeout = DefaultURLTimeout
		}
		fetcher = &datasource.URL{Template: d.URL, Vars: env.Vars, Timeout: timeout, Client: env.Client, Clock: clock}
	case DatasourceNoCloud, DatasourceConfigDrive:
		v := datasource.NoCloud()
		if d.Kind == DatasourceConfigDrive {
			v = datasource.ConfigDrive()
		}
		if d.Label != "" {
			v.Label = d.Label
		}
		v.Path, v.Timeout, v.Finder, v.Clock = d.Path, d.Timeout, env.Finder, clock
		fetcher = v
	default:
		return DatasourceResult{Name: name, Errors: []error{&DatasourceError{Name: name, Err: fmt.Errorf("unknown kind %q", d.Kind)}}}
	}
	doc, err := fetcher.Fetch(ctx)
	r := DatasourceResult{Name: name, Source: doc.Source, Took: clock.Now().Sub(start)}
	if err != nil {
		if errors.Is(err, datasource.ErrAbsent) {
			r.Absent = true
			return r
		}
		r.Errors = []error{&DatasourceError{Name: name, Source: doc.Source, Err: err}}
		return r
	}
	l, errs := Parse(LayerDatasource+" "+name, doc.Source, doc.Data)
	if l.root != nil && l.root.fields["datasources"] != nil {
		errs = append(errs, &Error{Source: doc.Source, Line: l.root.fields["datasources"].origin.Line, Path: "datasources",
			Msg: "a datasource cannot configure datasources; set them in the initrd file, the OEM disk or the command line"})
		l.root = l.root.without([]string{"datasources"})
	}
	r.Layer, r.Errors = l, errs
	return r
}

// Sources are the inputs of a Loader.
type Sources struct {
	// InitrdFile is the initrd's configuration file, InitrdPath; "" for
	// none. A missing file is not an error.
	InitrdFile string
	// OEM is the layer of the OEM disk, read by the caller with ReadFile
	// or Read, or nil.
	OEM *Layer
	// Cmdline is the text of /proc/cmdline.
	Cmdline string
	// Env is used by the datasources.
	Env DatasourceEnv
}

// Loader builds the effective configuration in the order of the boot:
// the layers on the machine first, then the datasources, which may be run
// in steps (those on volumes before the network is up, the URL after).
type Loader struct {
	layers []*Layer
	errs   []error // of reading the layers and running datasources
	local  *Effective
	env    DatasourceEnv
	ran    map[string]bool
	// machineVars: the variables are read from the machine when the
	// datasources run (after the drivers and the network are up), not
	// when the loader is made.
	machineVars bool
}

// NewLoader reads the layers that are on the machine: the embedded
// defaults, the initrd file, the OEM layer and the command line.
func NewLoader(src Sources) *Loader {
	ld := &Loader{layers: []*Layer{Defaults()}, env: src.Env, ran: map[string]bool{}}
	if src.InitrdFile != "" {
		l, errs := ReadFile(LayerInitrd, src.InitrdFile)
		if !(len(errs) == 1 && errors.Is(errs[0], fs.ErrNotExist)) {
			ld.errs = append(ld.errs, errs...)
		}
		ld.layers = append(ld.layers, l)
	}
	ld.layers = append(ld.layers, src.OEM)
	l, errs := ParseCmdline(src.Cmdline)
	ld.errs = append(ld.errs, errs...)
	ld.layers = append(ld.layers, l)
	ld.local, _ = Merge(ld.layers...)
	ld.machineVars = ld.env.Vars == nil
	return ld
}

// vars are the variables substituted in URLs: the machine's, read now,
// with ${hostname} the hostname of the local layers when they set one.
func (ld *Loader) vars() datasource.Vars {
	v := ld.env.Vars
	if ld.machineVars {
		v = datasource.SystemVars("/sys")
	}
	v = maps.Clone(v)
	if h := ld.local.Config.Hostname; h != "" {
		v["hostname"] = h
	}
	return v
}

// RunDatasources runs the enabled datasources of the local layers that
// have not run yet and that want selects (nil selects all), in order, and
// adds what they give as layers.
func (ld *Loader) RunDatasources(ctx context.Context, want func(*Datasource) bool) []DatasourceResult {
	var selected []Datasource
	for _, d := range ld.local.Config.Datasources {
		if !ld.ran[d.key()] && (want == nil || want(&d)) {
			ld.ran[d.key()] = true
			selected = append(selected, d)
		}
	}
	env := ld.env
	env.Vars = ld.vars()
	results := RunDatasources(ctx, selected, env)
	for _, r := range results {
		ld.errs = append(ld.errs, r.Errors...)
		ld.layers = append(ld.layers, r.Layer)
	}
	return results
}

// Effective merges the layers read so far. The errors are every problem
// found so far, to show on the console; the configuration is always one
// the boot can use.
func (ld *Loader) Effective() (*Effective, []error) {
	eff, errs := Merge(ld.layers...)
	return eff, append(append([]error(nil), ld.errs...), errs...)
}

// Load reads every layer and runs every datasource at once: NewLoader,
// RunDatasources and Effective.
func Load(ctx context.Context, src Sources) (*Effective, []DatasourceResult, []error) {
	ld := NewLoader(src)
	results := ld.RunDatasources(ctx, nil)
	eff, errs := ld.Effective()
	return eff, results, errs
}
