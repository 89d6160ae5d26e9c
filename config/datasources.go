package config

import "time"

// Datasource is a place more configuration is read from after the local
// layers. Datasources are tried in order; each one that yields a
// configuration is a layer over the ones before it.
type Datasource struct {
	// Name identifies the entry across layers; it defaults to Kind.
	Name string `yaml:"name" kurma:"check=name"`
	// Kind is url, nocloud or configdrive.
	Kind DatasourceKind `yaml:"kind" kurma:"enum=url|nocloud|configdrive"`
	// Enabled turns the datasource on. An entry is enabled unless it says
	// otherwise.
	Enabled bool `yaml:"enabled"`
	// URL (kind url) is an http or https URL in which ${mac}, ${uuid}
	// and ${hostname} are substituted.
	URL string `yaml:"url" kurma:"check=urltemplate"`
	// Timeout bounds the datasource: for url, all attempts together; for
	// the volumes, the wait for the device to appear.
	Timeout time.Duration `yaml:"timeout"`
	// Label (nocloud, configdrive) is the filesystem label of the volume,
	// "cidata" and "config-2" by default.
	Label string `yaml:"label" kurma:"check=label"`
	// Path (nocloud, configdrive) reads a directory, an image file or a
	// device instead of searching by label.
	Path string `yaml:"path" kurma:"check=abspath"`
}

// DatasourceKind is the kind of a datasource.
type DatasourceKind string

// The datasource kinds.
const (
	DatasourceURL         DatasourceKind = "url"
	DatasourceNoCloud     DatasourceKind = "nocloud"
	DatasourceConfigDrive DatasourceKind = "configdrive"
)

func (d *Datasource) setDefaults() { d.Enabled = true }

// key returns the name that identifies d across layers.
func (d *Datasource) key() string {
	if d.Name != "" {
		return d.Name
	}
	return string(d.Kind)
}
