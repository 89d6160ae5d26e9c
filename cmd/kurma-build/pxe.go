package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kurmaos/kurma/bootimage"
)

func runPXE(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var out, configURL string
	m, err := parseMediaFlags("pxe", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "pxe", "the directory to write the PXE tree to")
		fs.StringVar(&configURL, "config-url", "", "pass kurma.config.url=URL; iPXE expands ${mac} (the booting NIC's MAC) and its own settings such as ${next-server}")
	})
	if err != nil {
		return err
	}
	if err := bootimage.BuildPXE(m, bootimage.PXE{ConfigURL: configURL}, out); err != nil {
		return err
	}
	var total int64
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
	}
	fmt.Fprintf(stdout, "%s: %.1f MiB, PXE tree: %s (iPXE script), %s, %s, %s and %s (iPXE for PXE firmware)\n",
		out, float64(total)/(1<<20), bootimage.PXEScript, bootimage.PXEKernel, bootimage.PXEInitrd,
		bootimage.PXEBIOSLoader, bootimage.PXEEFILoader)
	return nil
}
