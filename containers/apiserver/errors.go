package apiserver

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/fetch"
	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/containers/pod"
)

// codeOf maps the runtime's errors to the API's codes, so a client can
// tell bad input from a missing object from a refusal.
func codeOf(err error) connect.Code {
	var (
		transition *pod.TransitionError
		manifest   *aci.ManifestError
		entry      *aci.EntryError
		platform   *aci.PlatformError
		ce         *connect.Error
	)
	switch {
	case errors.As(err, &ce):
		return ce.Code()
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	case errors.Is(err, image.ErrNotFound), errors.Is(err, fetch.ErrNotFound), errors.Is(err, pod.ErrNotFound):
		return connect.CodeNotFound
	case errors.Is(err, pod.ErrInvalid), errors.Is(err, pod.ErrAmbiguous):
		return connect.CodeInvalidArgument
	case errors.Is(err, pod.ErrFailed), errors.As(err, &transition):
		return connect.CodeFailedPrecondition
	case errors.Is(err, image.ErrInUse), errors.Is(err, image.ErrNoFetcher):
		return connect.CodeFailedPrecondition
	case errors.Is(err, fetch.ErrNotAllowed), errors.Is(err, fetch.ErrInsecure), errors.Is(err, pod.ErrForbidden):
		return connect.CodePermissionDenied
	case errors.Is(err, aci.ErrTooLarge), errors.Is(err, pod.ErrNoCapacity):
		return connect.CodeResourceExhausted
	case errors.Is(err, image.ErrAmbiguous), errors.Is(err, image.ErrMismatch),
		errors.As(err, &manifest), errors.As(err, &entry), errors.As(err, &platform),
		errors.Is(err, aci.ErrNoManifest), errors.Is(err, aci.ErrBadArchive):
		return connect.CodeInvalidArgument
	}
	return connect.CodeInternal
}

// apiError wraps err with its code, keeping its message.
func apiError(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	return connect.NewError(codeOf(err), err)
}

func invalid(format string, args ...any) error {
	return connect.NewError(connect.CodeInvalidArgument, errorf(format, args...))
}
