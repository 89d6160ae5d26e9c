package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

func (c *cli) listCmd() *cobra.Command {
	var sortBy string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ps"},
		Short:   "List the pods",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			resp, err := api.pods.List(cmd.Context(), connect.NewRequest(&kurmav1.ListPodsRequest{}))
			if err != nil {
				return err
			}
			pods := resp.Msg.Pods
			less, err := podOrder(sortBy, pods)
			if err != nil {
				return err
			}
			sort.SliceStable(pods, less)
			if c.json {
				return c.printJSON(resp.Msg)
			}
			t := &table{header: []string{"UUID", "NAME", "STATE", "APPS", "RESTARTS", "CREATED"}, shrink: 3}
			now := time.Now()
			for _, p := range pods {
				t.add(shortUUID(p.Uuid), p.Name, podState(p.State), appsSummary(p.Apps), fmt.Sprint(restarts(p)), ago(p.CreatedAt.AsTime(), now))
			}
			return t.print(c.stdout)
		},
	}
	cmd.Flags().StringVar(&sortBy, "sort", "created", "sort by name, state, created or image")
	return cmd
}

func podOrder(by string, pods []*kurmav1.Pod) (func(i, j int) bool, error) {
	switch by {
	case "name":
		return func(i, j int) bool { return pods[i].Name < pods[j].Name }, nil
	case "state":
		return func(i, j int) bool { return podState(pods[i].State) < podState(pods[j].State) }, nil
	case "created":
		return func(i, j int) bool { return pods[i].CreatedAt.AsTime().Before(pods[j].CreatedAt.AsTime()) }, nil
	case "image":
		first := func(p *kurmav1.Pod) string {
			if len(p.Apps) == 0 {
				return ""
			}
			return p.Apps[0].ImageId
		}
		return func(i, j int) bool { return first(pods[i]) < first(pods[j]) }, nil
	}
	return nil, fmt.Errorf("--sort %q: sort by name, state, created or image", by)
}

// podState is the state as people read it: "running".
func podState(s kurmav1.PodState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "POD_STATE_"))
}

func appState(s kurmav1.AppState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "APP_STATE_"))
}

// appsSummary is "web:running db:exited(1)".
func appsSummary(apps []*kurmav1.App) string {
	parts := make([]string, len(apps))
	for i, a := range apps {
		parts[i] = a.Name + ":" + appState(a.State)
		if a.State == kurmav1.AppState_APP_STATE_EXITED {
			parts[i] += fmt.Sprintf("(%d)", a.ExitCode)
		}
	}
	return strings.Join(parts, " ")
}

// restarts is how many times the pod's apps were restarted (the most of
// any app).
func restarts(p *kurmav1.Pod) int32 {
	var n int32
	for _, a := range p.Apps {
		n = max(n, a.Restarts)
	}
	return n
}

// shortUUID is a UUID's first block: unique enough to address a pod.
func shortUUID(u string) string {
	if i := strings.IndexByte(u, '-'); i > 0 {
		return u[:i]
	}
	return u
}
