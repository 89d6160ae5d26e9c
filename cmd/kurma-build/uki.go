package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/kurmaos/kurma/bootimage"
)

func runUKI(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("uki", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf mediaFlags
	mf.register(fs)
	out := fs.String("o", "kurma.efi", "where to write the Unified Kernel Image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("uki: unexpected arguments %q", fs.Args())
	}
	m, err := mf.media()
	if err != nil {
		return err
	}
	if err := bootimage.BuildUKI(m, *out); err != nil {
		return err
	}
	return printSize(stdout, *out, "Unified Kernel Image (UEFI): kernel, initrd and command line")
}
