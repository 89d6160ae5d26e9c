// Command kurma-build assembles Kurma's boot artifacts at build time:
//
//	kurma-build vmlinux -o OUT BZIMAGE     extract the uncompressed kernel
//	kurma-build initrd [flags]             build the reproducible initramfs
//	kurma-build buildroot -recipe R -o DIR assemble a userland tree or ACI
//	kurma-build iso [flags]                the hybrid ISO (BIOS and UEFI)
//	kurma-build disk [flags]               the GPT disk image (raw, qcow2)
//	kurma-build uki [flags]                the Unified Kernel Image
//	kurma-build pxe [flags]                the PXE tree (iPXE script, kernel, initrd)
//	kurma-build serve-pxe [flags]          serve a PXE tree over TFTP and HTTP
//
// It is build-time tooling: the OS binary links none of it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"pxe":       {"build the PXE tree: iPXE script, kernel, initrd", runPXE},
	"serve-pxe": {"serve a PXE tree over TFTP and HTTP", runServePXE},
	"uki":       {"build the Unified Kernel Image (UEFI)", runUKI},
	"vmlinux":   {"extract the uncompressed vmlinux from a bzImage", runVmlinux},
	"initrd":    {"build the reproducible initramfs", runInitrd},
	"buildroot": {"assemble a userland tree (or ACI) from a recipe", runBuildroot},
	"disk":      {"build the GPT disk image (raw and qcow2)", runDisk},
	"iso":       {"build the hybrid ISO (BIOS and UEFI; CD-ROM and USB)", runISO},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kurma-build: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("no command given")
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kurma-build COMMAND [flags]")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}
