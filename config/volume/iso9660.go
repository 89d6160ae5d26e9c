package volume

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
)

// ISO9660 (ECMA-119) with the Joliet and Rock Ridge (SUSP/RRIP) names:
// volume descriptors from sector 16, directories as extents of records.

const isoSector = 2048

func isISO(r io.ReaderAt) bool {
	b := make([]byte, 6)
	return readFull(r, b, 16*isoSector) == nil && string(b[1:6]) == "CD001"
}

// isoNames is how a directory tree names its files.
type isoNames int

const (
	namesPlain     isoNames = iota // ISO9660 names: upper case, ";1"
	namesJoliet                    // UCS-2 names of the Joliet tree
	namesRockRidge                 // POSIX names of Rock Ridge NM entries
)

type isoVolume struct {
	r     io.ReaderAt
	block int64
	names isoNames
	skip  int // SUSP bytes to skip at the start of each system use area
}

func openISO(r io.ReaderAt) (*volFS, string, error) {
	var pvd, joliet []byte
	for i := int64(0); i < 64; i++ {
		d := make([]byte, isoSector)
		if err := readFull(r, d, (16+i)*isoSector); err != nil {
			return nil, "", err
		}
		if string(d[1:6]) != "CD001" {
			return nil, "", fmt.Errorf("volume descriptor %d: no CD001 signature", i)
		}
		switch d[0] {
		case 1:
			if pvd == nil {
				pvd = d
			}
		case 2:
			if esc := string(d[88:91]); esc == "%/@" || esc == "%/C" || esc == "%/E" {
				joliet = d
			}
		}
		if d[0] == 255 {
			break
		}
	}
	if pvd == nil {
		return nil, "", errors.New("no primary volume descriptor")
	}
	v := &isoVolume{r: r, block: int64(binary.LittleEndian.Uint16(pvd[128:]))}
	if v.block != 512 && v.block != 1024 && v.block != 2048 {
		return nil, "", fmt.Errorf("logical block size %d", v.block)
	}
	label := strings.TrimRight(string(pvd[40:72]), " \x00")
	root, err := v.record(pvd[156:190])
	if err != nil {
		return nil, "", fmt.Errorf("root directory: %w", err)
	}
	if skip, ok := v.rockRidge(root); ok {
		v.names, v.skip = namesRockRidge, skip
	} else if joliet != nil {
		if jroot, err := v.record(joliet[156:190]); err == nil {
			v.names, root = namesJoliet, jroot
		}
	}
	fs := &volFS{root: v.entry(root, ""), match: func(want, have string) bool { return want == have }}
	if v.names == namesPlain {
		fs.match = func(want, have string) bool {
			return strings.EqualFold(want, have) || (level1(want) != "" && strings.EqualFold(level1(want), have))
		}
	}
	return fs, label, nil
}

// isoRecord is a directory record.
type isoRecord struct {
	extent int64
	size   int64
	dir    bool
	name   []byte
	su     []byte // system use area
	mod    time.Time
}

func (v *isoVolume) record(b []byte) (isoRecord, error) {
	if len(b) < 34 || int(b[0]) > len(b) || b[0] < 34 {
		return isoRecord{}, errors.New("short directory record")
	}
	b = b[:b[0]]
	n := int(b[32])
	if 33+n > len(b) {
		return isoRecord{}, errors.New("file name beyond its record")
	}
	suStart := 33 + n
	if n%2 == 0 {
		suStart++
	}
	rec := isoRecord{
		extent: int64(binary.LittleEndian.Uint32(b[2:])),
		size:   int64(binary.LittleEndian.Uint32(b[10:])),
		dir:    b[25]&2 != 0,
		name:   b[33 : 33+n],
		mod:    isoTime(b[18:25]),
	}
	if suStart < len(b) {
		rec.su = b[suStart:]
	}
	return rec, nil
}

func isoTime(b []byte) time.Time {
	zone := time.FixedZone("", int(int8(b[6]))*15*60)
	return time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, zone).UTC()
}

// rockRidge reports whether the tree has Rock Ridge names: the root's "."
// record starts its system use area with an SP entry.
func (v *isoVolume) rockRidge(root isoRecord) (int, bool) {
	recs, err := v.records(root)
	if err != nil || len(recs) == 0 {
		return 0, false
	}
	su := recs[0].su
	if len(su) >= 7 && string(su[0:2]) == "SP" && su[4] == 0xBE && su[5] == 0xEF {
		return int(su[6]), true
	}
	return 0, false
}

// records reads the records of a directory, "." and ".." included.
func (v *isoVolume) records(dir isoRecord) ([]isoRecord, error) {
	if dir.size > maxDir {
		return nil, fmt.Errorf("directory of %d bytes", dir.size)
	}
	b := make([]byte, dir.size)
	if err := readFull(v.r, b, dir.extent*v.block); err != nil {
		return nil, err
	}
	var recs []isoRecord
	for pos := 0; pos < len(b); {
		if b[pos] == 0 {
			// Records do not cross a sector: the rest of it is padding.
			pos = (pos/isoSector + 1) * isoSector
			continue
		}
		rec, err := v.record(b[pos:])
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
		pos += int(b[pos])
	}
	return recs, nil
}

func (v *isoVolume) entry(rec isoRecord, name string) entry {
	e := entry{name: name, dir: rec.dir, size: rec.size, mod: rec.mod, id: rec.extent}
	if rec.dir {
		e.size = 0
		e.list = func() ([]entry, error) { return v.list(rec) }
	} else {
		e.open = func() (io.ReaderAt, error) {
			return io.NewSectionReader(v.r, rec.extent*v.block, rec.size), nil
		}
	}
	return e
}

func (v *isoVolume) list(dir isoRecord) ([]entry, error) {
	recs, err := v.records(dir)
	if err != nil {
		return nil, err
	}
	var out []entry
	for _, rec := range recs {
		if len(rec.name) == 1 && rec.name[0] <= 1 {
			continue // "." and ".."
		}
		name, hidden, err := v.name(rec)
		if err != nil {
			return nil, err
		}
		if hidden || name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			continue
		}
		out = append(out, v.entry(rec, name))
	}
	return out, nil
}

// name decodes a record's name in the tree's naming; hidden is set for
// a directory Rock Ridge relocated elsewhere.
func (v *isoVolume) name(rec isoRecord) (name string, hidden bool, err error) {
	switch v.names {
	case namesJoliet:
		u := make([]uint16, len(rec.name)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(rec.name[2*i:])
		}
		return trimVersion(string(utf16.Decode(u))), false, nil
	case namesRockRidge:
		nm, relocated, err := v.susp(rec.su)
		if err != nil {
			return "", false, err
		}
		if nm != "" || relocated {
			return nm, relocated, nil
		}
	}
	return strings.ToLower(strings.TrimSuffix(trimVersion(string(rec.name)), ".")), false, nil
}

// level1 is the name an ISO9660 level 1 tree gives a file: 8.3 letters,
// digits and '_'. It lets "user-data" find USER_DAT on a volume without
// Rock Ridge or Joliet names.
func level1(name string) string {
	if strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != "" {
		return "" // only names that level 1 mangles in a known way
	}
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i+1:]
	}
	d := func(s string, n int) string {
		b := []byte(strings.ToUpper(s))
		for i, c := range b {
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				b[i] = '_'
			}
		}
		if len(b) > n {
			b = b[:n]
		}
		return string(b)
	}
	if ext == "" {
		return d(base, 8)
	}
	return d(base, 8) + "." + d(ext, 3)
}

func trimVersion(s string) string {
	if i := strings.LastIndexByte(s, ';'); i >= 0 {
		return s[:i]
	}
	return s
}

// susp walks a system use area and its continuation areas for the NM
// (name) and RE (relocated) entries.
func (v *isoVolume) susp(su []byte) (string, bool, error) {
	if v.skip <= len(su) {
		su = su[v.skip:]
	}
	var name bytes.Buffer
	relocated := false
	for hops := 0; ; hops++ {
		var next []byte
		for len(su) >= 4 {
			l := int(su[2])
			if l < 4 || l > len(su) {
				break
			}
			e := su[:l]
			switch string(e[:2]) {
			case "NM":
				if l >= 5 && e[4]&(2|4) == 0 { // not "." or ".."
					name.Write(e[5:])
				}
			case "RE":
				relocated = true
			case "CE":
				if l >= 28 {
					blk := int64(binary.LittleEndian.Uint32(e[4:]))
					off := int64(binary.LittleEndian.Uint32(e[12:]))
					n := int64(binary.LittleEndian.Uint32(e[20:]))
					if n > isoSector {
						return "", false, fmt.Errorf("continuation area of %d bytes", n)
					}
					next = make([]byte, n)
					if err := readFull(v.r, next, blk*v.block+off); err != nil {
						return "", false, err
					}
				}
			case "ST":
				su = nil
				continue
			}
			su = su[l:]
		}
		if next == nil {
			break
		}
		if hops == maxHops {
			return "", false, errors.New("too many continuation areas")
		}
		su = next
	}
	return name.String(), relocated, nil
}
