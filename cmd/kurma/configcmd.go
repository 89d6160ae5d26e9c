package main

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/config"
)

func (c *cli) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a configuration file, or show the machine's configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration file (over the built-in defaults); no daemon needed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			errs := config.Validate(args[0])
			for _, e := range errs {
				fmt.Fprintln(c.stderr, e)
			}
			if len(errs) > 0 {
				return fmt.Errorf("%s: %d errors", args[0], len(errs))
			}
			fmt.Fprintf(c.stdout, "%s: valid\n", args[0])
			return nil
		},
	}, &cobra.Command{
		Use:   "show",
		Short: "Show the machine's effective configuration, each value with the layer that set it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			resp, err := api.system.Config(cmd.Context(), connect.NewRequest(&kurmav1.ConfigRequest{}))
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(resp.Msg)
			}
			fmt.Fprint(c.stdout, resp.Msg.Yaml)
			for _, e := range resp.Msg.Errors {
				fmt.Fprintln(c.stderr, e)
			}
			if len(resp.Msg.Errors) > 0 {
				return errors.New("the configuration has errors (above); the valid settings apply")
			}
			return nil
		},
	})
	return cmd
}
