package initrd

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	kmod "github.com/kurmaos/kurma/kernel-modules"
)

// Spec says what goes into an initramfs.
type Spec struct {
	// Init is the binary installed as /init: kurma.
	Init string
	// KernelRelease names /lib/modules/RELEASE in the image.
	KernelRelease string
	// ModuleTree is the kernel's module tree (…/lib/modules/RELEASE) with
	// its depmod index.
	ModuleTree string
	// Profile chooses the modules to ship.
	Profile *kmod.Profile
	// Config is the base configuration, installed as
	// /etc/kurma/config.yaml when not empty.
	Config []byte
	// Release holds key=value facts about the build, installed as
	// /etc/kurma/release (profile, kernel release, version).
	Release map[string]string
	// Files are more files to ship, by path in the image.
	Files map[string]File
	// Compression is "" or "none" for a plain cpio (fastest to boot), or
	// "gzip".
	Compression string
}

// A File is a regular file to ship: its contents come from Source (a path
// on the build host) or Data. With Symlink set, it is a symbolic link to
// that target instead.
type File struct {
	Source  string
	Data    []byte
	Mode    os.FileMode
	Symlink string
}

// AddTree adds every file and symlink under dir to files, at the same
// path under / in the image.
func AddTree(files map[string]File, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			files[filepath.ToSlash(rel)] = File{Symlink: target}
		case fi.Mode().IsRegular():
			files[filepath.ToSlash(rel)] = File{Source: p, Mode: fi.Mode().Perm()}
		default:
			return fmt.Errorf("initrd: %s: only files and symlinks can be shipped", p)
		}
		return nil
	})
}

// Summary tells what a build wrote.
type Summary struct {
	Modules []string // module names shipped
	Entries int      // cpio records, without the trailer
	Size    int64    // bytes written
}

// Build writes the initramfs described by spec to w.
func Build(spec Spec, w io.Writer) (*Summary, error) {
	files := map[string]File{}
	add := func(name string, f File) {
		files[strings.TrimPrefix(path.Clean("/"+name), "/")] = f
	}
	if spec.Init == "" {
		return nil, fmt.Errorf("initrd: no init binary given")
	}
	add("init", File{Source: spec.Init, Mode: 0o755})
	sum := &Summary{}
	if spec.Profile != nil {
		ix, err := kmod.OpenIndex(spec.ModuleTree)
		if err != nil {
			return nil, fmt.Errorf("initrd: module index: %w", err)
		}
		mods, err := spec.Profile.Modules(ix)
		if err != nil {
			return nil, fmt.Errorf("initrd: %w", err)
		}
		base := "lib/modules/" + spec.KernelRelease
		for _, m := range mods {
			rel, _ := ix.RelPath(m) // Modules only returns modules of the tree
			add(base+"/"+rel, File{Source: filepath.Join(spec.ModuleTree, rel), Mode: 0o644})
		}
		for name, data := range ix.Subset(mods) {
			add(base+"/"+name, File{Data: data, Mode: 0o644})
		}
		sum.Modules = mods
	}
	if len(spec.Config) > 0 {
		add("etc/kurma/config.yaml", File{Data: spec.Config, Mode: 0o644})
	}
	if len(spec.Release) > 0 {
		add("etc/kurma/release", File{Data: renderRelease(spec.Release), Mode: 0o644})
	}
	for name, f := range spec.Files {
		add(name, f)
	}

	n, size, err := write(files, spec.Compression, w)
	sum.Entries, sum.Size = n, size
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// Overlay writes an uncompressed archive of just these files (and their
// directories). The kernel unpacks archives concatenated after the
// initramfs over it: this adds files to an image without rebuilding it.
func Overlay(files map[string]File, w io.Writer) error {
	clean := map[string]File{}
	for name, f := range files {
		clean[strings.TrimPrefix(path.Clean("/"+name), "/")] = f
	}
	_, _, err := write(clean, "none", w)
	return err
}

// write writes the files as a cpio archive, compressed as asked, and
// returns the number of records and the bytes written.
func write(files map[string]File, compression string, w io.Writer) (int, int64, error) {
	records, err := records(files)
	if err != nil {
		return 0, 0, err
	}
	cw := &countingWriter{w: w}
	var out io.Writer = cw
	var gz *gzip.Writer
	switch compression {
	case "", "none":
	case "gzip":
		gz = gzip.NewWriter(cw) // no name or time in the header: reproducible
		out = gz
	default:
		return 0, 0, fmt.Errorf("initrd: unknown compression %q (none, gzip)", compression)
	}
	rw := cpio.Newc.Writer(out)
	for _, r := range records {
		if err := rw.WriteRecord(r); err != nil {
			return 0, 0, fmt.Errorf("initrd: %s: %w", r.Name, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return 0, 0, err
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return 0, 0, err
		}
	}
	return len(records), cw.n, nil
}

// records turns the file map into cpio records: the directories every path
// needs, the device nodes the kernel wants before /dev is mounted, and the
// files, sorted by name, with fixed owners, times and inode numbers.
func records(files map[string]File) ([]cpio.Record, error) {
	dirs := map[string]bool{"dev": true, "proc": true, "sys": true, "run": true, "tmp": true, "etc": true}
	for name := range files {
		for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var recs []cpio.Record
	for d := range dirs {
		mode := uint64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		recs = append(recs, cpio.Directory(d, mode))
	}
	// The kernel opens /dev/console for init's stdio before anything is
	// mounted: without this node init runs with no console.
	recs = append(recs, cpio.CharDev("dev/console", 0o600, 5, 1))
	for name, f := range files {
		if f.Symlink != "" {
			recs = append(recs, cpio.Symlink(name, f.Symlink))
			continue
		}
		data := f.Data
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return nil, fmt.Errorf("initrd: %s: %w", name, err)
			}
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		recs = append(recs, cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | uint64(mode)}))
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	for i := range recs {
		recs[i] = cpio.MakeReproducible(recs[i])
		recs[i].Ino = uint64(i + 1)
		recs[i].NLink = 1
	}
	return recs, nil
}

func renderRelease(kv map[string]string) []byte {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, kv[k])
	}
	return b.Bytes()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
