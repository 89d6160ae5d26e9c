// Command kurma-stage is the in-pod init alone ("kurma-stage
// stage-init"), for "kurma daemon --stage-binary": it links only package
// stage, so each pod's init starts faster and holds less memory than the
// full kurma binary would (see docs/pods.md for the numbers).
package main

import (
	"fmt"
	"os"

	"github.com/kurmaos/kurma/containers/stage"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != stage.Verb {
		fmt.Fprintf(os.Stderr, "usage: %s %s (started by the kurma daemon)\n", os.Args[0], stage.Verb)
		os.Exit(2)
	}
	os.Exit(stage.Main())
}
