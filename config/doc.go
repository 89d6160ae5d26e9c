// Package config is Kurma's configuration: the schema, the embedded
// defaults, the layers and the datasources. It is data: it imports neither
// the boot sequence nor the container runtime.
package config
