package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kurmaos/kurma/initrd"
	kmod "github.com/kurmaos/kurma/kernel-modules"
)

func runInitrd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("initrd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		out      = fs.String("o", "initrd.img", "where to write the initramfs")
		init     = fs.String("init", "", "the binary installed as /init (required): kurma")
		kdir     = fs.String("kernel-dir", "", "the unpacked kernel: DIR/lib/modules/RELEASE (required)")
		release  = fs.String("release", "", "the kernel release (required)")
		profile  = fs.String("profile", "qemu", "module profile: "+strings.Join(kmod.ProfileNames(), ", "))
		config   = fs.String("config", "", "base configuration to install as /etc/kurma/config.yaml")
		version  = fs.String("version", "dev", "Kurma version recorded in /etc/kurma/release")
		compress = fs.String("compress", "none", "compression: none (fastest boot) or gzip")
		trees    listFlag
		files    listFlag
		links    listFlag
	)
	fs.Var(&links, "symlink", "DEST=TARGET: a symlink DEST pointing to TARGET (repeatable)")
	fs.Var(&trees, "tree", "a directory whose files are shipped at the same paths under / (repeatable)")
	fs.Var(&files, "file", "DEST=SRC: ship the file SRC as DEST, mode kept (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *init == "" || *kdir == "" || *release == "" {
		return fmt.Errorf("initrd: -init, -kernel-dir and -release are required")
	}
	p, err := kmod.LoadProfile(*profile)
	if err != nil {
		return err
	}
	spec := initrd.Spec{
		Init:          *init,
		KernelRelease: *release,
		ModuleTree:    filepath.Join(*kdir, "lib/modules", *release),
		Profile:       p,
		Compression:   *compress,
		Release: map[string]string{
			"KURMA_VERSION":  *version,
			"KURMA_PROFILE":  *profile,
			"KERNEL_RELEASE": *release,
		},
	}
	spec.Files = map[string]initrd.File{}
	for _, t := range trees {
		if err := initrd.AddTree(spec.Files, t); err != nil {
			return err
		}
	}
	for _, f := range files {
		dest, src, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(dest, "/") || src == "" {
			return fmt.Errorf("initrd: -file %q: want /DEST=SRC", f)
		}
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("initrd: -file %s: %w", dest, err)
		}
		spec.Files[dest] = initrd.File{Source: src, Mode: fi.Mode().Perm()}
	}
	for _, l := range links {
		dest, target, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(dest, "/") || target == "" {
			return fmt.Errorf("initrd: -symlink %q: want /DEST=TARGET", l)
		}
		spec.Files[dest] = initrd.File{Symlink: target}
	}
	if *config != "" {
		if spec.Config, err = os.ReadFile(*config); err != nil {
			return err
		}
	}
	f, err := os.Create(*out + ".tmp")
	if err != nil {
		return err
	}
	sum, err := initrd.Build(spec, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(*out+".tmp", *out)
	}
	if err != nil {
		_ = os.Remove(*out + ".tmp") // never leave a partial image behind
		return err
	}
	fmt.Fprintf(stdout, "%s: %.1f MiB, %d entries, %d modules (profile %s)\n",
		*out, float64(sum.Size)/(1<<20), sum.Entries, len(sum.Modules), *profile)
	return nil
}

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
