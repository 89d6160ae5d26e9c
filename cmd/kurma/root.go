package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// cli is one run of the command line: its streams, its global flags and,
// once a verb needs them, its API clients.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	host          string
	cert, key, ca string
	json          bool
	clients       *clients
}

// run runs the command line args (without the program name).
func run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string) error {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	root := c.root()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if c.clients != nil {
		c.clients.close()
	}
	return err
}

func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "kurma",
		Short: "Run App Container pods on Kurma",
		Long: `kurma drives a Kurma machine: pods, images, the system.

It talks to the daemon's API on the local socket (/run/kurma/kurma.sock), or
with -H to a remote machine over TLS with a client certificate.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVarP(&c.host, "host", "H", envOr("KURMA_HOST", defaultSocket),
		"the daemon: a unix socket path (unix:///run/kurma/kurma.sock) or host:port over TLS ($KURMA_HOST)")
	f.StringVar(&c.cert, "cert", os.Getenv("KURMA_CERT"), "client certificate for a remote host ($KURMA_CERT)")
	f.StringVar(&c.key, "key", os.Getenv("KURMA_KEY"), "client key for a remote host ($KURMA_KEY)")
	f.StringVar(&c.ca, "ca", os.Getenv("KURMA_CA"), "CA of the remote host's certificate ($KURMA_CA)")
	f.BoolVar(&c.json, "json", false, "print JSON for programs instead of tables")
	root.AddCommand(
		c.daemonCmd(), c.consoleCmd(),
		c.runCmd(), c.listCmd(), c.showCmd(), c.enterCmd(), c.attachCmd(), c.stopCmd(), c.rmCmd(), c.logsCmd(),
		c.imageCmd(),
		c.infoCmd(),
		c.rebootCmd(), c.poweroffCmd(),
		c.certsCmd(),
		c.configCmd(),
		c.versionCmd(),
	)
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// exitError is an exit status to pass through (kurma enter's command's).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func asExit(err error, target *exitError) bool { return errors.As(err, target) }
