// Command kurma is Kurma's runtime daemon and command line: "kurma
// daemon" runs the pod runtime on any Linux host (and inside the Kurma
// OS). The hidden verb "stage-init" is the in-pod init the runtime
// re-executes this binary as.
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
		fmt.Fprintln(os.Stderr, "kurma:", err)
		os.Exit(1)
	}
}
