package main

import (
	"context"
	"flag"
	"io"

	"github.com/kurmaos/kurma/bootimage"
)

func runISO(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var out string
	m, err := parseMediaFlags("iso", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "kurma.iso", "where to write the ISO image")
	})
	if err != nil {
		return err
	}
	if err := bootimage.BuildISO(ctx, m, out); err != nil {
		return err
	}
	return printSize(stdout, out, "hybrid ISO: BIOS and UEFI, CD-ROM and USB")
}
