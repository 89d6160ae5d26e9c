package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

func (c *cli) attachCmd() *cobra.Command {
	var app string
	cmd := &cobra.Command{
		Use:   "attach POD [--app APP]",
		Short: "Attach to an interactive app's terminal",
		Long: `attach connects stdin and stdout to the terminal of an interactive app
(one started with kurma run --interactive) until the app exits, whose
exit status is kurma's. Ending kurma (or its stdin, on a terminal)
detaches: the app runs on, and another attach picks it up.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.attach(cmd.Context(), args[0], app)
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "the interactive app (the pod's only one by default)")
	return cmd
}

// attach attaches to an interactive app and returns its exit as an
// error (nil for 0).
func (c *cli) attach(ctx context.Context, pod, app string) error {
	tty := c.isTerminal()
	sess, size, err := c.openSession(tty)
	if err != nil {
		return err
	}
	defer sess.close()
	api, err := c.api()
	if err != nil {
		return err
	}
	// The stream outlives ctx, so that a detach waits for the daemon.
	stream := api.pods.Attach(context.WithoutCancel(ctx))
	// Ending ctx detaches: the request's end tells the daemon, which
	// ends the stream once the init has let go (so that an attach right
	// after is taken); a daemon that does not answer is left.
	defer context.AfterFunc(ctx, func() {
		_ = stream.CloseRequest() // the stream may be over already
		time.AfterFunc(5*time.Second, func() { _ = stream.CloseResponse() })
	})()
	if err := stream.Send(&kurmav1.AttachRequest{Part: &kurmav1.AttachRequest_Start{Start: &kurmav1.AttachStart{Pod: pod, App: app, Tty: tty, Size: size}}}); err != nil {
		return err
	}
	// The app may have ended when these are sent.
	defer sess.follow(
		func(b []byte) error {
			return stream.Send(&kurmav1.AttachRequest{Part: &kurmav1.AttachRequest_Stdin{Stdin: b}})
		},
		func() {
			if !tty {
				_ = stream.Send(&kurmav1.AttachRequest{Part: &kurmav1.AttachRequest_StdinClosed{StdinClosed: true}})
			}
		},
		func(sz *kurmav1.TerminalSize) {
			_ = stream.Send(&kurmav1.AttachRequest{Part: &kurmav1.AttachRequest_Resize{Resize: sz}})
		},
	)()
	for {
		msg, err := stream.Receive()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // detached
			}
			return err
		}
		switch part := msg.Part.(type) {
		case *kurmav1.AttachResponse_Stdout:
			c.stdout.Write(part.Stdout)
		case *kurmav1.AttachResponse_ExitCode:
			_ = stream.CloseRequest() // the app is over
			if part.ExitCode != 0 {
				return exitError(part.ExitCode)
			}
			return nil
		}
	}
}
