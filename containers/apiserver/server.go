package apiserver

import (
	"bytes"
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/api/kurma/v1/kurmav1connect"
	"github.com/kurmaos/kurma/containers/image"
)

// MaxMessageBytes bounds every request message: an import uploads its
// image in many messages, each under this.
const MaxMessageBytes = 4 << 20

// Server is the kurma.v1 API over the runtime.
type Server struct {
	Version string
	Images  *image.Store
	// Pods serves PodService; nil answers Unimplemented.
	Pods kurmav1connect.PodServiceHandler
	// PodCounts counts the pods and the running ones, for Info.
	PodCounts func() (total, running int)
	// Capacity reports the machine's capacity and use; nil is the whole
	// host, nothing requested.
	Capacity func() *kurmav1.Capacity
	// BootFile is PID 1's boot record (/run/kurma/boot.json); "" for none.
	BootFile string
	// Power ends the machine ("reboot", "poweroff"); nil when the daemon
	// does not run on the Kurma OS.
	Power func(ctx context.Context, action string) error
	// Config renders the effective configuration with its origins and
	// its errors; nil when the daemon has none.
	Config func() (yaml string, errs []string, err error)
	// Insecure is what the configuration lets callers ask of Fetch.
	Insecure Insecure
	Events   *Events
	// Logf reports connections refused before any call (TLS handshakes
	// without a valid client certificate); nil discards them.
	Logf func(format string, args ...any)
}

// Handler returns the HTTP handler of every service, with the callers'
// roles checked before any request is read.
func (s *Server) Handler() http.Handler {
	if s.Events == nil {
		s.Events = NewEvents()
	}
	opts := []connect.HandlerOption{
		connect.WithInterceptors(authorize{}),
		connect.WithReadMaxBytes(MaxMessageBytes),
	}
	mux := http.NewServeMux()
	mux.Handle(kurmav1connect.NewImageServiceHandler(&imageService{store: s.Images, events: s.Events, insecure: s.Insecure}, opts...))
	mux.Handle(kurmav1connect.NewSystemServiceHandler(systemService{s}, opts...))
	pods := s.Pods
	if pods == nil {
		pods = kurmav1connect.UnimplementedPodServiceHandler{}
	}
	mux.Handle(kurmav1connect.NewPodServiceHandler(pods, opts...))
	return withRoles(mux)
}

// Serve serves the API on the listeners until ctx ends, then shuts down,
// giving calls in flight a few seconds.
func (s *Server) Serve(ctx context.Context, listeners ...net.Listener) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true) // gRPC on the unix socket
	logf := s.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	srv := &http.Server{
		ErrorLog:          log.New(logWriter(logf), "", 0),
		Handler:           s.Handler(),
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errs := make(chan error, len(listeners))
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown) // streams that do not end are cut
	srv.Close()
	wg.Wait()
	return err
}

// logWriter turns the http server's log lines into Logf calls.
type logWriter func(format string, args ...any)

func (w logWriter) Write(p []byte) (int, error) {
	w("api: %s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}
