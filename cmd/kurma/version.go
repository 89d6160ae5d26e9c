package main

import (
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the versions of this command and of the daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(c.stdout, "kurma %s\n", version)
			api, err := c.api()
			if err != nil {
				return nil // no daemon to ask: the command's version is enough
			}
			resp, err := api.system.Info(cmd.Context(), connect.NewRequest(&kurmav1.InfoRequest{}))
			if err != nil {
				fmt.Fprintf(c.stdout, "daemon: unreachable (%v)\n", connect.CodeOf(err))
				return nil
			}
			fmt.Fprintf(c.stdout, "daemon %s on %s\n", resp.Msg.Version, resp.Msg.Hostname)
			return nil
		},
	}
}
