package main

import (
	"io"

	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

func (c *cli) enterCmd() *cobra.Command {
	var (
		app      string
		tty, noT bool
		env      []string
	)
	cmd := &cobra.Command{
		Use:   "enter POD [--app APP] [-- COMMAND ARG...]",
		Short: "Run a command (a shell by default) inside a running app",
		Long: `enter runs a command in a running app of the pod: its root, user,
environment and the pod's namespaces. With a terminal on stdin it gets a
terminal (resized with yours); the command's exit status is kurma's.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, command := args[0], args[1:]
			useTTY := tty || (!noT && c.isTerminal())
			start := &kurmav1.EnterStart{Pod: ref, App: app, Command: command, Tty: useTTY, Environment: map[string]string{}}
			for _, e := range env {
				k, v, _ := cutEnv(e)
				start.Environment[k] = v
			}
			sess, size, err := c.openSession(useTTY)
			if err != nil {
				return err
			}
			defer sess.close()
			start.Size = size
			api, err := c.api()
			if err != nil {
				return err
			}
			stream := api.pods.Enter(cmd.Context())
			if err := stream.Send(&kurmav1.EnterRequest{Part: &kurmav1.EnterRequest_Start{Start: start}}); err != nil {
				return err
			}
			// The command may have ended when these are sent.
			defer sess.follow(
				func(b []byte) error {
					return stream.Send(&kurmav1.EnterRequest{Part: &kurmav1.EnterRequest_Stdin{Stdin: b}})
				},
				func() {
					_ = stream.Send(&kurmav1.EnterRequest{Part: &kurmav1.EnterRequest_StdinClosed{StdinClosed: true}})
				},
				func(sz *kurmav1.TerminalSize) {
					_ = stream.Send(&kurmav1.EnterRequest{Part: &kurmav1.EnterRequest_Resize{Resize: sz}})
				},
			)()
			for {
				msg, err := stream.Receive()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				switch part := msg.Part.(type) {
				case *kurmav1.EnterResponse_Stdout:
					c.stdout.Write(part.Stdout)
				case *kurmav1.EnterResponse_Stderr:
					c.stderr.Write(part.Stderr)
				case *kurmav1.EnterResponse_ExitCode:
					_ = stream.CloseRequest() // the command is over
					if part.ExitCode != 0 {
						return exitError(part.ExitCode)
					}
					return nil
				}
			}
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "the app (the pod's only app by default)")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "give the command a terminal even when stdin is not one")
	cmd.Flags().BoolVarP(&noT, "no-tty", "T", false, "no terminal even when stdin is one")
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "NAME=VALUE for the command (repeat)")
	return cmd
}

func cutEnv(e string) (string, string, bool) {
	for i := 0; i < len(e); i++ {
		if e[i] == '=' {
			return e[:i], e[i+1:], true
		}
	}
	return e, "", false
}
