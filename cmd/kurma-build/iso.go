package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/kurmaos/kurma/bootimage"
)

func runISO(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("iso", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf mediaFlags
	mf.register(fs)
	out := fs.String("o", "kurma.iso", "where to write the ISO image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("iso: unexpected arguments %q", fs.Args())
	}
	m, err := mf.media()
	if err != nil {
		return err
	}
	if err := bootimage.BuildISO(ctx, m, *out); err != nil {
		return err
	}
	return printSize(stdout, *out, "hybrid ISO: BIOS and UEFI, CD-ROM and USB")
}
