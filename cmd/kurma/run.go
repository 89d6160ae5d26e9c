package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

func (c *cli) runCmd() *cobra.Command {
	var (
		name, manifest, user, group, workdir string
		env, volumes, mounts, isolators      []string
		wait, fetchImages, hostNetwork       bool
		interactive, tty, noTTY              bool
	)
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE... [-- COMMAND ARG...] | run --manifest FILE",
		Short: "Run images as a pod (one app each), or a pod manifest",
		Long: `run creates and starts a pod and prints its UUID.

Images are IDs or names with labels (example.com/app:1.0). A command after
-- replaces the image's exec (one image only). Volumes are NAME:empty or
NAME:host:/path, with :ro to make them read-only; --mount VOLUME:TARGET
mounts one into every app at a mount point name of its image or an
absolute path. With --wait, run waits for the apps to exit, prints their
output and exits with the first app's status.

With --interactive (one image), the app runs on a terminal and run
attaches to it (as kurma attach): stdin and stdout are the app's, from
its start, and its exit status is kurma's. The terminal is one for a
terminal (echo, line editing, ^C) when stdin is one, else one that
passes data as it is, the end of stdin ending the app's input. Ending
kurma detaches: the app runs on.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if interactive && (wait || manifest != "") {
				return fmt.Errorf("run: --interactive attaches to the app: not with --wait or --manifest")
			}
			if (tty || noTTY) && !interactive {
				return fmt.Errorf("run: --tty and --no-tty go with --interactive")
			}
			req := &kurmav1.CreatePodRequest{Name: name, Wait: wait}
			images, command := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				images, command = args[:dash], args[dash:]
			}
			switch {
			case manifest != "":
				if len(images) > 0 {
					return fmt.Errorf("run: give a manifest or images, not both")
				}
				data, err := os.ReadFile(manifest)
				if err != nil {
					return err
				}
				req.Spec = &kurmav1.CreatePodRequest_Manifest{Manifest: data}
			case len(images) == 0:
				return fmt.Errorf("run: no image given")
			default:
				if len(command) > 0 && len(images) > 1 {
					return fmt.Errorf("run: a command after -- needs exactly one image, not %d", len(images))
				}
				if interactive && len(images) > 1 {
					return fmt.Errorf("run: --interactive needs exactly one image, not %d", len(images))
				}
				spec := &kurmav1.RunSpec{Fetch: fetchImages, HostNetwork: hostNetwork}
				for _, iso := range isolators {
					name, value, ok := strings.Cut(iso, "=")
					if !ok || name == "" || !json.Valid([]byte(value)) {
						return fmt.Errorf("run: --isolator %q: want NAME=JSON, as resource/memory='{\"limit\":\"64Mi\"}'", iso)
					}
					spec.Isolators = append(spec.Isolators, &kurmav1.Isolator{Name: name, Value: []byte(value)})
				}
				envMap := map[string]string{}
				for _, e := range env {
					k, v, ok := strings.Cut(e, "=")
					if !ok || k == "" {
						return fmt.Errorf("run: --env %q: want NAME=VALUE", e)
					}
					envMap[k] = v
				}
				var appMounts []*kurmav1.Mount
				for _, m := range mounts {
					vol, target, ok := strings.Cut(m, ":")
					if !ok || vol == "" || target == "" {
						return fmt.Errorf("run: --mount %q: want VOLUME:TARGET", m)
					}
					appMounts = append(appMounts, &kurmav1.Mount{Volume: vol, Path: target})
				}
				for _, img := range images {
					spec.Apps = append(spec.Apps, &kurmav1.AppSpec{Image: img, Exec: command, Environment: envMap,
						User: user, Group: group, WorkingDirectory: workdir, Mounts: appMounts,
						Interactive: interactive, Tty: interactive && (tty || (!noTTY && c.isTerminal()))})
				}
				for _, v := range volumes {
					vol, err := parseVolume(v)
					if err != nil {
						return err
					}
					spec.Volumes = append(spec.Volumes, vol)
				}
				req.Spec = &kurmav1.CreatePodRequest_Run{Run: spec}
			}
			api, err := c.api()
			if err != nil {
				return err
			}
			resp, err := api.pods.Create(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			p := resp.Msg.Pod
			if c.json {
				return c.printJSON(p)
			}
			if interactive {
				return c.runAttached(cmd, p.Uuid)
			}
			if !wait {
				fmt.Fprintln(c.stdout, p.Uuid)
				return nil
			}
			if err := c.printLogs(cmd, p.Uuid, "", false, 0); err != nil {
				return err
			}
			if p.State == kurmav1.PodState_POD_STATE_FAILED {
				// The apps' statuses are not to be trusted: the pod
				// failed around them (its init died, say).
				return fmt.Errorf("pod %s failed: %s", p.Uuid, p.Message)
			}
			if len(p.Apps) > 0 && p.Apps[0].ExitCode != 0 {
				return exitError(p.Apps[0].ExitCode)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "a unique name for the pod")
	f.StringVar(&manifest, "manifest", "", "run this appc pod manifest (JSON) instead of images")
	f.StringArrayVarP(&env, "env", "e", nil, "NAME=VALUE added to every app's environment (repeat)")
	f.StringArrayVar(&volumes, "volume", nil, "NAME:empty or NAME:host:/path, optionally :ro (repeat)")
	f.StringArrayVar(&mounts, "mount", nil, "VOLUME:TARGET mounted into every app (repeat)")
	f.StringVar(&user, "user", "", "run the apps as this user (name, number or path)")
	f.StringVar(&group, "group", "", "run the apps with this group")
	f.StringVar(&workdir, "workdir", "", "the apps' working directory")
	f.BoolVar(&wait, "wait", false, "wait for the apps to exit, print their output, exit with the first app's status")
	f.BoolVar(&fetchImages, "fetch", false, "fetch images the store does not have")
	f.StringArrayVar(&isolators, "isolator", nil, `a pod isolator, NAME=JSON: resource/memory='{"limit":"64Mi"}', os/linux/pids-limit=100 (repeat)`)
	f.BoolVar(&hostNetwork, "host-network", false, "use the host's network instead of the pod's own")
	f.BoolVarP(&interactive, "interactive", "i", false, "run the app on a terminal and attach to it (one image)")
	f.BoolVarP(&tty, "tty", "t", false, "with --interactive: a terminal for a terminal even when stdin is not one")
	f.BoolVarP(&noTTY, "no-tty", "T", false, "with --interactive: a terminal that passes data as it is even when stdin is a terminal")
	return cmd
}

// runAttached attaches to the interactive pod just created. An app that
// ended before the attach (the pod with it) had its whole output kept in
// its log: it is printed instead, with the app's exit status.
func (c *cli) runAttached(cmd *cobra.Command, uuid string) error {
	err := c.attach(cmd.Context(), uuid, "")
	var ex exitError
	if err == nil || asExit(err, &ex) || cmd.Context().Err() != nil {
		return err
	}
	api, aerr := c.api()
	if aerr != nil {
		return err
	}
	// An app that has ended ends its pod, soon.
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
	defer cancel()
	got, gerr := api.pods.Wait(ctx, connect.NewRequest(&kurmav1.WaitPodRequest{Pod: uuid}))
	if gerr != nil {
		return err
	}
	p := got.Msg.Pod
	switch p.State {
	case kurmav1.PodState_POD_STATE_EXITED, kurmav1.PodState_POD_STATE_STOPPED:
	case kurmav1.PodState_POD_STATE_FAILED:
		return fmt.Errorf("pod %s failed: %s", p.Uuid, p.Message)
	default:
		return err
	}
	if err := c.printLogs(cmd, p.Uuid, "", false, 0); err != nil {
		return err
	}
	if len(p.Apps) > 0 && p.Apps[0].ExitCode != 0 {
		return exitError(p.Apps[0].ExitCode)
	}
	return nil
}

// parseVolume reads NAME:empty[:ro] or NAME:host:/path[:ro].
func parseVolume(s string) (*kurmav1.Volume, error) {
	parts := strings.Split(s, ":")
	ro := false
	if len(parts) > 2 && parts[len(parts)-1] == "ro" {
		ro, parts = true, parts[:len(parts)-1]
	}
	switch {
	case len(parts) == 2 && parts[1] == "empty":
		return &kurmav1.Volume{Name: parts[0], Kind: "empty", ReadOnly: ro}, nil
	case len(parts) == 3 && parts[1] == "host" && strings.HasPrefix(parts[2], "/"):
		return &kurmav1.Volume{Name: parts[0], Kind: "host", Source: parts[2], ReadOnly: ro, Recursive: true}, nil
	}
	return nil, fmt.Errorf("run: --volume %q: want NAME:empty or NAME:host:/absolute/path, optionally :ro", s)
}
