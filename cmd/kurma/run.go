package main

import (
	"context"
	"fmt"
	"io"
)

const usage = `usage: kurma COMMAND [FLAGS]

commands:
  daemon    run the pod runtime (flags: kurma daemon -h)
`

// run runs the command line args (without the program name).
func run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "daemon":
		return runDaemon(ctx, stdout, stderr, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
