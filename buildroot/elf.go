package buildroot

import (
	"debug/elf"
	"fmt"
	"strings"
)

// elfDeps returns the program interpreter (empty for a static binary) and
// the sonames an ELF file needs, with its run path when it has one.
func elfDeps(path string) (interp string, needed, runpath []string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			return "", nil, nil, fmt.Errorf("%s: interpreter: %w", path, err)
		}
		interp = strings.TrimRight(string(data), "\x00")
	}
	if needed, err = f.ImportedLibraries(); err != nil {
		return "", nil, nil, fmt.Errorf("%s: needed libraries: %w", path, err)
	}
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		paths, err := f.DynString(tag)
		if err != nil {
			continue // no dynamic section: a static binary
		}
		for _, p := range paths {
			runpath = append(runpath, strings.Split(p, ":")...)
		}
	}
	return interp, needed, runpath, nil
}

// libDirs are where Debian's dynamic linker looks on amd64, in order.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}
