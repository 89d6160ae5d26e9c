package volume

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"time"
)

var errLoop = errors.New("directory loop")

// entry is a file or directory of a volume, as its reader sees it.
type entry struct {
	name string
	dir  bool
	size int64
	mod  time.Time
	id   int64                       // where a directory is stored, to find loops
	open func() (io.ReaderAt, error) // a file's content
	list func() ([]entry, error)     // a directory's entries
}

// volFS serves a volume's entries as an fs.FS.
type volFS struct {
	root  entry
	match func(want, have string) bool
}

func (v *volFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	e := v.root
	seen := map[int64]bool{e.id: true}
	if name != "." {
		for _, part := range strings.Split(name, "/") {
			if !e.dir {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			}
			list, err := e.list()
			if err != nil {
				return nil, &fs.PathError{Op: "open", Path: name, Err: err}
			}
			found := false
			for _, c := range list {
				if v.match(part, c.name) {
					e, found = c, true
					break
				}
			}
			if !found {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			}
			if e.dir && seen[e.id] {
				// A damaged volume can hold a directory inside itself.
				return nil, &fs.PathError{Op: "open", Path: name, Err: errLoop}
			}
			seen[e.id] = true
		}
	}
	if name == "." {
		e.name = "."
	}
	if e.dir {
		list, err := e.list()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dirFile{e: e, list: list}, nil
	}
	r, err := e.open()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{e: e, SectionReader: io.NewSectionReader(r, 0, e.size)}, nil
}

// info is an entry as fs.FileInfo and fs.DirEntry.
type info struct{ e entry }

func (i info) Name() string { return i.e.name }
func (i info) Size() int64  { return i.e.size }
func (i info) Mode() fs.FileMode {
	if i.e.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i info) ModTime() time.Time         { return i.e.mod }
func (i info) IsDir() bool                { return i.e.dir }
func (i info) Sys() any                   { return nil }
func (i info) Type() fs.FileMode          { return i.Mode().Type() }
func (i info) Info() (fs.FileInfo, error) { return i, nil }

type file struct {
	e entry
	*io.SectionReader
}

func (f *file) Stat() (fs.FileInfo, error) { return info{f.e}, nil }
func (f *file) Close() error               { return nil }

type dirFile struct {
	e    entry
	list []entry
	off  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return info{d.e}, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.e.name, Err: fs.ErrInvalid}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.list[d.off:]
	if n > 0 && len(rest) == 0 {
		return nil, io.EOF
	}
	if n > 0 && n < len(rest) {
		rest = rest[:n]
	}
	d.off += len(rest)
	out := make([]fs.DirEntry, len(rest))
	for i, e := range rest {
		out[i] = info{e}
	}
	return out, nil
}
