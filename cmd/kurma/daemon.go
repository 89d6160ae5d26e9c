package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"path/filepath"

	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/containers/pod"
)

// runDaemon runs the pod runtime until ctx ends. Pods keep running when
// it stops; the next daemon on the same state directory takes them over.
func runDaemon(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("kurma daemon", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", "/var/lib/kurma", "state directory (images/ and pods/ under it)")
	stageBinary := fs.String("stage-binary", "", "binary re-executed as each pod's init (default: this one; kurma-stage is smaller)")
	runDir := fs.String("run-dir", "/run/kurma", "runtime state directory (a tmpfs; pods/ under it)")
	spares := fs.Int("spares", 1, "pod inits kept started ahead for pods to come (0: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := log.New(stderr, "kurma: ", log.LstdFlags)
	var m *pod.Manager
	store, err := image.Open(filepath.Join(*stateDir, "images"), image.Options{
		InUse: func(ctx context.Context) ([]string, error) { return m.ImagesInUse(ctx) },
		Logf:  logger.Printf,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	if *spares <= 0 {
		*spares = -1 // pod.Options: negative is none
	}
	m, err = pod.Open(ctx, pod.Options{
		Dir:         filepath.Join(*stateDir, "pods"),
		RunDir:      filepath.Join(*runDir, "pods"),
		Images:      store,
		StageBinary: *stageBinary,
		Spares:      *spares,
		Logf:        logger.Printf,
	})
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(stdout, "kurma: daemon ready, state in %s, %d pods\n", *stateDir, len(m.List()))
	<-ctx.Done()
	return nil
}
