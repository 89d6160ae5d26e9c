package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/kurmaos/kurma/netboot"
)

func runServePXE(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve-pxe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dir      = fs.String("dir", "build/kurma/pxe", "the PXE tree to serve (make pxe)")
		config   = fs.String("config", "", "per-machine configurations to serve over HTTP at /config/ (default: DIR/config)")
		tftpAddr = fs.String("tftp", ":69", "TFTP listen address (empty: no TFTP; port 69 needs root or CAP_NET_BIND_SERVICE)")
		httpAddr = fs.String("http", ":8080", "HTTP listen address (empty: no HTTP)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("serve-pxe: unexpected arguments %q", fs.Args())
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	return netboot.Serve(ctx, netboot.Options{
		Dir: *dir, ConfigDir: *config, TFTP: *tftpAddr, HTTP: *httpAddr, Logf: logf,
		Ready: func(t, h net.Addr) {
			if t != nil {
				logf("serve-pxe: %s over TFTP on %s", *dir, t)
			}
			if h != nil {
				logf("serve-pxe: %s over HTTP on %s", *dir, h)
			}
			logf("serve-pxe: ctrl-c stops")
		},
	})
}
