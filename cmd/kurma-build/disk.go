package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/kurmaos/kurma/bootimage"
)

func runDisk(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var out, qcow2, seed string
	var esp, data int64
	m, err := parseMediaFlags("disk", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "kurma.img", "where to write the raw disk image")
		fs.StringVar(&qcow2, "qcow2", "", "also write a qcow2 copy here")
		fs.Int64Var(&esp, "esp-mib", bootimage.DefaultESPSize>>20, "size of the EFI system partition, in MiB")
		fs.Int64Var(&data, "data-mib", 256, "size of the blank "+bootimage.DataPartitionName+" partition, in MiB (0: none)")
		fs.StringVar(&seed, "seed", "kurma", "seed of the disk's and partitions' GUIDs")
	})
	if err != nil {
		return err
	}
	d := bootimage.Disk{ESPSize: esp << 20, DataSize: data << 20, Seed: seed}
	if err := bootimage.BuildDisk(ctx, m, d, out); err != nil {
		return err
	}
	what := fmt.Sprintf("raw GPT disk: %d MiB EFI system partition (BIOS and UEFI)", esp)
	if data > 0 {
		what += fmt.Sprintf(", %d MiB blank %s", data, bootimage.DataPartitionName)
	}
	if err := printSize(stdout, out, what+"; sparse"); err != nil {
		return err
	}
	if qcow2 == "" {
		return nil
	}
	if err := bootimage.ConvertQcow2(ctx, out, qcow2); err != nil {
		return err
	}
	return printSize(stdout, qcow2, "qcow2 copy of "+out)
}
