package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kurmaos/kurma/containers/apiserver"
)

func (c *cli) certsCmd() *cobra.Command {
	var (
		dir      string
		hosts    []string
		validity time.Duration
	)
	cmd := &cobra.Command{
		Use:   "certs --host NAME|IP... [--dir DIR]",
		Short: "Make a first setup for the remote API: a CA, a server and client certificates",
		Long: `certs makes, in DIR: ca.pem and ca-key.pem (the CA), server.pem and
server-key.pem for the machine (give every name and address clients use
with --host), and admin.pem, reader.pem with their keys for clients.

Configure the machine with api.remote (address, and tls: cert, key,
client_ca: ca.pem), and clients with:
  kurma -H HOST:PORT --cert admin.pem --key admin-key.pem --ca ca.pem ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(hosts) == 0 {
				return fmt.Errorf("certs: give the server's names and addresses with --host")
			}
			if err := apiserver.WriteSetup(dir, hosts, validity); err != nil {
				return err
			}
			for _, f := range apiserver.SetupFiles {
				fmt.Fprintf(c.stdout, "%s/%s\n", dir, f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "kurma-certs", "where to write the files")
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "a name or address of the server (repeat)")
	cmd.Flags().DurationVar(&validity, "validity", 365*24*time.Hour, "how long the certificates are valid (the CA ten times longer)")
	return cmd
}
