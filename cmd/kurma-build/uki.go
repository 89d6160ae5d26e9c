package main

import (
	"context"
	"flag"
	"io"

	"github.com/kurmaos/kurma/bootimage"
)

func runUKI(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var out string
	m, err := parseMediaFlags("uki", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "kurma.efi", "where to write the Unified Kernel Image")
	})
	if err != nil {
		return err
	}
	if err := bootimage.BuildUKI(m, out); err != nil {
		return err
	}
	return printSize(stdout, out, "Unified Kernel Image (UEFI): kernel, initrd and command line")
}
