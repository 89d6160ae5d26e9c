// Command kurma is Kurma's command line and runtime daemon: "kurma
// daemon" runs the pod runtime and its API on any Linux host (and inside
// the Kurma OS); every other verb talks to a daemon over the API, on the
// local socket or, with -H, a remote host. The hidden verb "stage-init" is
// the in-pod init the runtime re-executes this binary as.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kurmaos/kurma/containers/stage"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == stage.Verb {
		os.Exit(stage.Main())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Stdin, os.Stdout, os.Stderr, os.Args[1:])
	stop()
	if err != nil {
		var ex exitError
		if asExit(err, &ex) {
			os.Exit(int(ex))
		}
		fmt.Fprintln(os.Stderr, "kurma:", err)
		os.Exit(1)
	}
}
