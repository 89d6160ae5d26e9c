package main

import (
	"context"
	"fmt"
	"io"
)

func runInitrd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("initrd: not yet")
}
