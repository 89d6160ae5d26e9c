package bootstrap

import (
	"context"
	"errors"

	"github.com/appc/spec/schema/types"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

// Runtime is what the bootstrap needs of the container runtime.
type Runtime interface {
	// Image finds the image ref names: an image name with an optional
	// version ("example.com/app:1.0"), looked up in the store and fetched
	// when it is not there; an http(s) URL, fetched; or the path of an
	// ACI file, imported.
	Image(ctx context.Context, ref string) (*Image, error)
	// Create creates and starts a pod named name from a pod manifest
	// (JSON). With replace, an ended pod of that name is removed and the
	// new pod counts as its restart.
	Create(ctx context.Context, name string, manifest []byte, replace bool) (*kurmav1.Pod, error)
	// Wait returns the pod's state once it has ended. A pod that is gone
	// is ErrNotFound.
	Wait(ctx context.Context, uuid string) (*kurmav1.Pod, error)
	// Remove stops and removes the pod named name; no such pod is not an
	// error.
	Remove(ctx context.Context, name string) error
	// Logs calls line with each line the pod's apps print, until the pod
	// has ended.
	Logs(ctx context.Context, uuid string, line func(string)) error
}

// Image is an image in the runtime's store.
type Image struct {
	ID   string
	Name string
	// App is the image's app, nil when it has none.
	App *types.App
}

// ErrNotFound is the error of a pod or image the runtime does not have.
var ErrNotFound = errors.New("not found")
