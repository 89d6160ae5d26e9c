package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kurmaos/kurma/kernel"
)

func runVmlinux(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vmlinux", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "vmlinux", "where to write the uncompressed kernel")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("vmlinux: want one bzImage argument, got %d", fs.NArg())
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := kernel.ParseBzImage(data)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	vmlinux, err := b.Vmlinux()
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if err := writeFileAtomic(*out, vmlinux, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d bytes (%s)\n", *out, len(vmlinux), b.KernelVersion())
	return nil
}

// writeFileAtomic writes data to a temporary file beside path, then renames
// it, so an interrupted build never leaves a truncated artifact.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp) // best effort; the rename error is what matters
		return err
	}
	return nil
}
