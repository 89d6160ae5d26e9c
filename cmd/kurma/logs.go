package main

import (
	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

func (c *cli) logsCmd() *cobra.Command {
	var (
		app    string
		follow bool
		tail   int
	)
	cmd := &cobra.Command{
		Use:   "logs POD",
		Short: "Print a pod's output (every app, or --app); -f follows it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.printLogs(cmd, args[0], app, follow, tail)
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "only this app")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the pod ends (or ctrl-c)")
	cmd.Flags().IntVar(&tail, "tail", 0, "only the last lines (0: all)")
	return cmd
}

func (c *cli) printLogs(cmd *cobra.Command, pod, app string, follow bool, tail int) error {
	api, err := c.api()
	if err != nil {
		return err
	}
	stream, err := api.pods.Logs(cmd.Context(), connect.NewRequest(&kurmav1.LogsRequest{Pod: pod, App: app, Follow: follow, Tail: int32(tail)}))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		if _, err := c.stdout.Write(stream.Msg().Data); err != nil {
			return err
		}
	}
	if err := stream.Err(); err != nil && cmd.Context().Err() == nil {
		return err
	}
	return nil
}
