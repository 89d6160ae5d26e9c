package config

import "time"

// Bootstrap lists the containers started in the bootstrap phase:
// run-to-completion containers first, in order, then services.
type Bootstrap struct {
	// Containers are merged by name across layers.
	Containers []Container `yaml:"containers" kurma:"key=name"`
}

// Container is a bootstrap container: a pod of one app.
type Container struct {
	// Name of the pod (and of its app), unique among bootstrap
	// containers.
	Name string `yaml:"name" kurma:"required,check=podname"`
	// Enabled can turn off a container defined by an earlier layer. An
	// entry is enabled unless it says otherwise.
	Enabled bool `yaml:"enabled"`
	// Image is an appc image name ("example.com/app:1.0"), an http(s)
	// URL, or a path to an .aci file.
	Image string `yaml:"image" kurma:"check=image"`
	// Kind is run-to-completion or service (the default).
	Kind ContainerKind `yaml:"kind" kurma:"enum=run-to-completion|service"`
	// Essential containers that fail stop the boot in emergency mode.
	Essential bool `yaml:"essential"`
	// Restart is the restart policy; its default depends on Kind.
	Restart Restart `yaml:"restart"`
	// Env is added to the app's environment.
	Env map[string]string `yaml:"env" kurma:"keycheck=envname"`
	// Args replace the image's exec arguments when given.
	Args []string `yaml:"args"`
	// Files are written into the app's root filesystem before it starts.
	Files []File `yaml:"files"`
	// Isolators are appc isolators by name, each with its JSON value:
	// {"resource/memory": {limit: 512M}}.
	Isolators map[string]any `yaml:"isolators" kurma:"keycheck=acname"`
	// Volumes are mounted into the app.
	Volumes []Volume `yaml:"volumes"`
}

// ContainerKind says whether a container runs once or keeps running.
type ContainerKind string

// The container kinds.
const (
	// KindRunToCompletion containers run in order; the boot waits for
	// each to exit.
	KindRunToCompletion ContainerKind = "run-to-completion"
	// KindService containers keep running and are restarted by policy.
	KindService ContainerKind = "service"
)

// Restart is a restart policy with exponential backoff.
type Restart struct {
	// Policy is always, on-failure or never. Empty means always for a
	// service and never for a run-to-completion container.
	Policy RestartPolicy `yaml:"policy" kurma:"enum=always|on-failure|never"`
	// Backoff is the wait before the first restart; it doubles at each
	// restart up to MaxBackoff.
	Backoff time.Duration `yaml:"backoff"`
	// MaxBackoff bounds the wait between restarts.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// RestartPolicy says when a container is restarted.
type RestartPolicy string

// The restart policies.
const (
	RestartAlways    RestartPolicy = "always"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartNever     RestartPolicy = "never"
)

// File is a file written into a container before it starts.
type File struct {
	// Path inside the app's root filesystem, absolute.
	Path string `yaml:"path" kurma:"check=abspath"`
	// Content of the file.
	Content string `yaml:"content"`
	// Mode in octal, "0644" by default.
	Mode string `yaml:"mode" kurma:"check=mode"`
}

// Volume is a volume mounted into a bootstrap container.
type Volume struct {
	// Name of the volume in the pod.
	Name string `yaml:"name" kurma:"check=acname"`
	// Kind is host (a host directory) or empty (a new directory).
	Kind string `yaml:"kind" kurma:"enum=host|empty"`
	// Source is the host directory of a host volume.
	Source string `yaml:"source" kurma:"check=abspath"`
	// Path is where the volume is mounted in the app.
	Path string `yaml:"path" kurma:"check=abspath"`
	// ReadOnly mounts the volume read-only.
	ReadOnly bool `yaml:"read_only"`
}

// RestartPolicyOf returns the policy in force for c: its own, or the
// default of its kind.
func (c *Container) RestartPolicyOf() RestartPolicy {
	if c.Restart.Policy != "" {
		return c.Restart.Policy
	}
	if c.Kind == KindRunToCompletion {
		return RestartNever
	}
	return RestartAlways
}

// setDefaults gives a new entry the values it has unless a layer says
// otherwise.
func (c *Container) setDefaults() {
	c.Enabled = true
	c.Kind = KindService
	c.Restart.Backoff = time.Second
	c.Restart.MaxBackoff = time.Minute
}
