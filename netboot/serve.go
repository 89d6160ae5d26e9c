package netboot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Options say what Serve listens on.
type Options struct {
	// Dir is the PXE tree.
	Dir string
	// ConfigDir, if set, is served over HTTP at /config/ instead of
	// Dir/config.
	ConfigDir string
	// TFTP and HTTP are listen addresses (":69", ":8080"); an empty one
	// is not served.
	TFTP, HTTP string
	// Logf is told of each transfer and request.
	Logf func(format string, a ...any)
	// Ready, if not nil, is called with the bound addresses once both
	// listen (tests listen on port 0).
	Ready func(tftp, http net.Addr)
}

// Serve serves the tree until ctx ends, then returns nil; it returns an
// error if a server cannot start or fails.
func Serve(ctx context.Context, o Options) error {
	if o.TFTP == "" && o.HTTP == "" {
		return errors.New("netboot: neither a TFTP nor an HTTP address to serve on")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	var tftpAddr, httpAddr net.Addr
	running := 0
	if o.TFTP != "" {
		srv, err := NewTFTPServer(o.Dir, o.Logf)
		if err != nil {
			return fmt.Errorf("netboot: %w", err)
		}
		conn, err := net.ListenPacket("udp", o.TFTP)
		if err != nil {
			return fmt.Errorf("netboot: tftp: %w", err)
		}
		tftpAddr = conn.LocalAddr()
		running++
		go func() { errs <- srv.Serve(ctx, conn) }()
	}
	if o.HTTP != "" {
		h, err := ConfigHandler(o.Dir, o.ConfigDir, o.Logf)
		if err != nil {
			return fmt.Errorf("netboot: %w", err)
		}
		l, err := net.Listen("tcp", o.HTTP)
		if err != nil {
			return fmt.Errorf("netboot: http: %w", err)
		}
		httpAddr = l.Addr()
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		running++
		go func() {
			err := srv.Serve(l)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errs <- err
		}()
		context.AfterFunc(ctx, func() {
			shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			_ = srv.Shutdown(shutdown) // transfers still running after 5 s are cut
		})
	}
	if o.Ready != nil {
		o.Ready(tftpAddr, httpAddr)
	}
	var first error
	for ; running > 0; running-- {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel() // one server failed: stop the other
		}
	}
	return first
}
