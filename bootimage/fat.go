package bootimage

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// A fatImage is a FAT filesystem made with mtools in a file, at an offset
// (a partition of a disk image) or at its start, without loop devices.
type fatImage struct {
	file   string
	offset int64 // bytes
	epoch  time.Time
}

// spec is how mtools names the image: FILE@@OFFSET.
func (f fatImage) spec() string {
	if f.offset == 0 {
		return f.file
	}
	return f.file + "@@" + strconv.FormatInt(f.offset, 10)
}

// fatFormat describes a new filesystem.
type fatFormat struct {
	sectors int64  // the filesystem's size in 512-byte sectors
	label   string // at most 11 characters
	serial  uint32 // the volume serial, also its UUID (XXXX-XXXX)
	fat32   bool
}

// format makes the filesystem; the file must already be large enough.
// The boot sector's hidden-sectors field is the offset in sectors, as
// for a partition starting there.
func (f fatImage) format(ctx context.Context, ff fatFormat) error {
	args := []string{"-i", f.spec(),
		"-T", strconv.FormatInt(ff.sectors, 10), "-h", "64", "-s", "32",
		"-H", strconv.FormatInt(f.offset/sectorSize, 10),
		"-v", ff.label, "-N", fmt.Sprintf("%08x", ff.serial)}
	if ff.fat32 {
		args = append(args, "-F")
	}
	return run(ctx, f.epoch, "mformat", append(args, "::")...)
}

// A fatFile is a file to copy into the filesystem: from Source on the
// host, or Data.
type fatFile struct {
	Source string
	Data   []byte
}

// copy makes the directories and copies the files, in the order of
// their paths, so the same files give the same filesystem.
func (f fatImage) copy(ctx context.Context, files map[string]fatFile) error {
	tmp, err := os.MkdirTemp("", "kurma-fat-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	names := sortedKeys(files)
	made := map[string]bool{"/": true}
	var dirs []string
	for _, n := range names {
		for d := path.Dir(n); !made[d]; d = path.Dir(d) {
			made[d] = true
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs) // parents before children
	if len(dirs) > 0 {
		args := []string{"-i", f.spec()}
		for _, d := range dirs {
			args = append(args, "::"+d)
		}
		if err := run(ctx, f.epoch, "mmd", args...); err != nil {
			return err
		}
	}
	for i, n := range names {
		src := files[n].Source
		if src == "" {
			src = filepath.Join(tmp, strconv.Itoa(i))
			if err := os.WriteFile(src, files[n].Data, 0o644); err != nil {
				return err
			}
		}
		if err := run(ctx, f.epoch, "mcopy", "-i", f.spec(), src, "::"+n); err != nil {
			return err
		}
	}
	return nil
}

// fatSectors is the size of a FAT filesystem with room for files of
// total bytes: their size, a tenth more for clusters and tables, and a
// mebibyte, rounded up to a mebibyte.
func fatSectors(total int64) int64 {
	size := total + total/10 + mib
	size = (size + mib - 1) / mib * mib
	return size / sectorSize
}

// filesSize adds up the sizes of files.
func filesSize(files map[string]fatFile) (int64, error) {
	var total int64
	for _, f := range files {
		if f.Source == "" {
			total += int64(len(f.Data))
			continue
		}
		fi, err := os.Stat(f.Source)
		if err != nil {
			return 0, err
		}
		total += fi.Size()
	}
	return total, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
