package main

import (
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

func (c *cli) stopCmd() *cobra.Command {
	var grace int
	cmd := &cobra.Command{
		Use:   "stop POD...",
		Short: "Stop pods: SIGTERM to the apps, then SIGKILL after the grace period",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			for _, ref := range args {
				resp, err := api.pods.Stop(cmd.Context(), connect.NewRequest(&kurmav1.StopPodRequest{Pod: ref, GraceSeconds: int32(grace)}))
				if err != nil {
					return fmt.Errorf("stop %s: %w", ref, err)
				}
				fmt.Fprintln(c.stdout, resp.Msg.Pod.Uuid)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&grace, "grace", 0, "seconds between SIGTERM and SIGKILL (0: the daemon's default)")
	return cmd
}

func (c *cli) rmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm POD...",
		Aliases: []string{"remove"},
		Short:   "Remove pods: everything they hold is freed",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			for _, ref := range args {
				if _, err := api.pods.Remove(cmd.Context(), connect.NewRequest(&kurmav1.RemovePodRequest{Pod: ref, Force: force})); err != nil {
					return fmt.Errorf("rm %s: %w", ref, err)
				}
				fmt.Fprintln(c.stdout, ref)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "stop running pods first")
	return cmd
}
