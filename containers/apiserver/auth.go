package apiserver

import (
	"context"
	"crypto/x509"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

// Role is what a caller may do.
type Role string

const (
	// Admin may do everything.
	Admin Role = "admin"
	// Reader may list and read, and nothing else.
	Reader Role = "reader"
)

// RolePrefix starts the Organization of a client certificate that gives
// its holder a role: "kurma:admin", "kurma:reader".
const RolePrefix = "kurma:"

// readerProcedures are the calls a reader may make.
var readerProcedures = map[string]bool{
	"/kurma.v1.PodService/List":      true,
	"/kurma.v1.PodService/Get":       true,
	"/kurma.v1.PodService/Logs":      true,
	"/kurma.v1.PodService/Wait":      true,
	"/kurma.v1.ImageService/List":    true,
	"/kurma.v1.ImageService/Get":     true,
	"/kurma.v1.SystemService/Info":   true,
	"/kurma.v1.SystemService/Events": true,
	"/kurma.v1.SystemService/Config": true,
}

// Allowed reports whether a role may call a procedure.
func Allowed(role Role, procedure string) bool {
	switch role {
	case Admin:
		return true
	case Reader:
		return readerProcedures[procedure]
	}
	return false
}

// MayUseHostIsolators reports whether a role may create pods with
// host/privileged or host/api-access (pod.CreateOptions.AllowPrivileged):
// admin only. A reader cannot create pods at all; the rule stands on its
// own so that a role added later does not get them by accident.
func MayUseHostIsolators(role Role) bool {
	return role == Admin
}

type roleKey struct{}

// RoleOf returns the caller's role; callers without one have none.
func RoleOf(ctx context.Context) Role {
	r, _ := ctx.Value(roleKey{}).(Role)
	return r
}

// WithRole returns a context whose caller has the role (for tests and
// in-process callers).
func WithRole(ctx context.Context, r Role) context.Context {
	return context.WithValue(ctx, roleKey{}, r)
}

// roleFromCert reads the role of a verified client certificate.
func roleFromCert(c *x509.Certificate) Role {
	for _, o := range c.Subject.Organization {
		if r, ok := strings.CutPrefix(o, RolePrefix); ok {
			switch Role(r) {
			case Admin, Reader:
				return Role(r)
			}
		}
	}
	return ""
}

// withRoles attaches the caller's role to each request: a TLS caller has
// its verified certificate's role; a caller on the unix socket is admin
// (the socket's owner and group are the access control).
func withRoles(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role := Admin
		if r.TLS != nil {
			role = ""
			if len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
				role = roleFromCert(r.TLS.VerifiedChains[0][0])
			}
		}
		next.ServeHTTP(w, r.WithContext(WithRole(r.Context(), role)))
	})
}

// authorize refuses calls the caller's role does not allow, before the
// request is read.
type authorize struct{}

func (authorize) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := check(ctx, req.Spec().Procedure); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (authorize) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (authorize) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := check(ctx, conn.Spec().Procedure); err != nil {
			if conn.Spec().StreamType == connect.StreamTypeClient {
				drainUploads(ctx, conn)
			}
			return err
		}
		return next(ctx, conn)
	}
}

// drainUploads reads and drops what a refused client stream still sends
// (up to a bound), so that its client reads the refusal instead of a
// broken stream.
func drainUploads(ctx context.Context, conn connect.StreamingHandlerConn) {
	ctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	var msg kurmav1.ImportImageRequest // the one client stream
	var n int
	for n < drainMaxBytes && ctx.Err() == nil {
		if err := conn.Receive(&msg); err != nil {
			return
		}
		n += len(msg.GetData())
	}
}

// How much of a refused upload is read to answer it cleanly.
const (
	drainMaxBytes = 64 << 20
	drainTimeout  = 5 * time.Second
)

func check(ctx context.Context, procedure string) error {
	role := RoleOf(ctx)
	if role == "" {
		return connect.NewError(connect.CodePermissionDenied, errNoRole)
	}
	if !Allowed(role, procedure) {
		return connect.NewError(connect.CodePermissionDenied, &roleError{role: role, procedure: procedure})
	}
	return nil
}

type roleError struct {
	role      Role
	procedure string
}

func (e *roleError) Error() string {
	return "the " + string(e.role) + " role may not call " + strings.TrimPrefix(e.procedure, "/kurma.v1.") + " (it needs admin)"
}

var errNoRole = &noRoleError{}

type noRoleError struct{}

func (*noRoleError) Error() string {
	return "the client certificate gives no role: its Organization must be " + RolePrefix + "admin or " + RolePrefix + "reader"
}
