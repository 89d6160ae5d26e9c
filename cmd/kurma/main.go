// Command kurma is the Kurma OS's one program. As PID 1 (the kernel
// starts it as /init) it is the OS's init (package boot, in init/).
// Otherwise it is the command line and the runtime daemon: "kurma daemon"
// runs the pod runtime and its API on any Linux host (and inside the
// Kurma OS); "kurma console" is the OS's console service; every other
// verb talks to a daemon over the API, on the local socket or, with -H, a
// remote host. The hidden verb "stage-init" is the in-pod init the
// runtime re-executes this binary as.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kurmaos/kurma/containers/stage"
	boot "github.com/kurmaos/kurma/init"
)

func main() {
	// A pod's init first: it is PID 1 of its pod's namespace.
	if len(os.Args) > 1 && os.Args[1] == stage.Verb {
		os.Exit(stage.Main())
	}
	if boot.IsInit() {
		boot.Main() // never returns
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
