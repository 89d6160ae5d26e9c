// Command kurma is Kurma's command line and runtime daemon: "kurma
// daemon" runs the pod runtime; every other verb talks to a daemon over
// its API, on the local socket or, with -H, a remote host.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
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
