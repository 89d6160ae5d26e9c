package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

func (c *cli) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show POD",
		Aliases: []string{"status"},
		Short:   "Show a pod: its state, apps and their exit statuses",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			resp, err := api.pods.Get(cmd.Context(), connect.NewRequest(&kurmav1.GetPodRequest{Pod: args[0]}))
			if err != nil {
				return err
			}
			p := resp.Msg.Pod
			if c.json {
				return c.printJSON(p)
			}
			now := time.Now()
			when := func(t *timestamppb.Timestamp) string {
				if t == nil {
					return "-"
				}
				return t.AsTime().Local().Format(time.RFC3339) + " (" + ago(t.AsTime(), now) + ")"
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "UUID:\t%s\n", p.Uuid)
			if p.Name != "" {
				fmt.Fprintf(tw, "Name:\t%s\n", p.Name)
			}
			fmt.Fprintf(tw, "State:\t%s\n", podState(p.State))
			if len(p.Addresses) > 0 {
				fmt.Fprintf(tw, "Addresses:\t%s\n", strings.Join(p.Addresses, ", "))
			}
			if p.Message != "" {
				fmt.Fprintf(tw, "Message:\t%s\n", p.Message)
			}
			fmt.Fprintf(tw, "Created:\t%s\n", when(p.CreatedAt))
			fmt.Fprintf(tw, "Started:\t%s\n", when(p.StartedAt))
			fmt.Fprintf(tw, "Finished:\t%s\n", when(p.FinishedAt))
			for _, w := range p.Warnings {
				fmt.Fprintf(tw, "Warning:\t%s\n", w)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout)
			t := &table{header: []string{"APP", "IMAGE", "STATE", "EXIT", "RESTARTS", "STARTED"}, shrink: 1}
			for _, a := range p.Apps {
				exit := ""
				if a.State == kurmav1.AppState_APP_STATE_EXITED {
					exit = fmt.Sprint(a.ExitCode)
					if a.Signal != "" {
						exit += " (" + a.Signal + ")"
					}
					if a.OomKilled {
						exit += " out of memory"
					}
				}
				started := ""
				if a.StartedAt != nil {
					started = ago(a.StartedAt.AsTime(), now)
				}
				t.add(a.Name, shortID(a.ImageId), appState(a.State), exit, fmt.Sprint(a.Restarts), started)
			}
			if err := t.print(c.stdout); err != nil {
				return err
			}
			if len(p.Isolators) == 0 {
				return nil
			}
			fmt.Fprintln(c.stdout)
			it := &table{header: []string{"ISOLATOR", "APP", "STATUS", "MESSAGE"}, shrink: 3}
			for _, i := range p.Isolators {
				app := i.App
				if app == "" {
					app = "(pod)"
				}
				it.add(i.Name, app, i.Status, i.Message)
			}
			return it.print(c.stdout)
		},
	}
}
