package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kurmaos/kurma/bootimage"
)

// mediaFlags are the flags every boot medium takes: where the kernel,
// initramfs and command line come from, and how the build is dated.
type mediaFlags struct {
	image, kernel, initrd, cmdline, appendArgs, version string
	timeout                                             int
	epoch                                               int64
}

func (f *mediaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.image, "image", "build/kurma", "the image directory: vmlinuz, initrd.img and cmdline (make image)")
	fs.StringVar(&f.kernel, "kernel", "", "the kernel bzImage (default IMAGE/vmlinuz)")
	fs.StringVar(&f.initrd, "initrd", "", "the initramfs (default IMAGE/initrd.img)")
	fs.StringVar(&f.cmdline, "cmdline", "", "the kernel command line (default: the contents of IMAGE/cmdline)")
	fs.StringVar(&f.appendArgs, "append", "", "more kernel arguments, after the command line")
	fs.StringVar(&f.version, "version", "dev", "the version shown in boot menus and os-release")
	fs.IntVar(&f.timeout, "timeout", bootimage.DefaultTimeout, "boot menu timeout in seconds (0: boot at once, -1: wait for a key)")
	epoch, _ := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64) // unset or invalid: now
	fs.Int64Var(&f.epoch, "epoch", epoch, "the time files are dated, in seconds since 1970 ($SOURCE_DATE_EPOCH; 0: now, not reproducible)")
}

func (f *mediaFlags) media() (bootimage.Media, error) {
	m := bootimage.Media{
		Kernel:  f.kernel,
		Initrd:  f.initrd,
		Cmdline: f.cmdline,
		Version: f.version,
		Timeout: f.timeout,
		Epoch:   time.Unix(f.epoch, 0).UTC(),
	}
	if f.epoch == 0 {
		m.Epoch = time.Now().UTC()
	}
	if m.Kernel == "" {
		m.Kernel = filepath.Join(f.image, "vmlinuz")
	}
	if m.Initrd == "" {
		m.Initrd = filepath.Join(f.image, "initrd.img")
	}
	if m.Cmdline == "" {
		data, err := os.ReadFile(filepath.Join(f.image, "cmdline"))
		if err != nil {
			return m, fmt.Errorf("%w (run make image, or give -cmdline)", err)
		}
		m.Cmdline = strings.TrimSpace(string(data))
	}
	if f.appendArgs != "" {
		m.Cmdline = strings.TrimSpace(m.Cmdline + " " + f.appendArgs)
	}
	return m, nil
}

// parseMediaFlags parses a medium's command line: the flags every
// medium takes and those define adds. It returns the media they name.
func parseMediaFlags(name string, args []string, stderr io.Writer, define func(*flag.FlagSet)) (bootimage.Media, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf mediaFlags
	mf.register(fs)
	define(fs)
	if err := fs.Parse(args); err != nil {
		return bootimage.Media{}, err
	}
	if fs.NArg() != 0 {
		return bootimage.Media{}, fmt.Errorf("%s: unexpected arguments %q", name, fs.Args())
	}
	return mf.media()
}

// printSize reports an output and its size.
func printSize(w io.Writer, path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %.1f MiB, %s\n", path, float64(fi.Size())/(1<<20), what)
	return nil
}
