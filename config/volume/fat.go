package volume

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
)

// FAT12, FAT16 and FAT32 (Microsoft's FAT specification), with long file
// names (VFAT).

type fatVolume struct {
	r            io.ReaderAt
	bits         int   // 12, 16 or 32
	sector       int64 // bytes per sector
	cluster      int64 // bytes per cluster
	fatStart     int64 // byte offset of the first FAT
	rootStart    int64 // byte offset of the FAT12/16 root directory
	rootSize     int64 // its bytes
	rootCluster  uint32
	dataStart    int64 // byte offset of cluster 2
	clusters     uint32
	bootLabel    string
	hasBootLabel bool
}

func isFAT(r io.ReaderAt) bool {
	b := make([]byte, 512)
	if readFull(r, b, 0) != nil {
		return false
	}
	_, err := parseFAT(r, b)
	return err == nil
}

func parseFAT(r io.ReaderAt, b []byte) (*fatVolume, error) {
	if b[0] != 0xEB && b[0] != 0xE9 {
		return nil, errors.New("no boot jump")
	}
	bps := int64(binary.LittleEndian.Uint16(b[11:]))
	spc := int64(b[13])
	rsvd := int64(binary.LittleEndian.Uint16(b[14:]))
	nfats := int64(b[16])
	rootEnts := int64(binary.LittleEndian.Uint16(b[17:]))
	total := int64(binary.LittleEndian.Uint16(b[19:]))
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(b[32:]))
	}
	fatSz := int64(binary.LittleEndian.Uint16(b[22:]))
	if fatSz == 0 {
		fatSz = int64(binary.LittleEndian.Uint32(b[36:]))
	}
	switch {
	case bps != 512 && bps != 1024 && bps != 2048 && bps != 4096:
		return nil, fmt.Errorf("%d bytes per sector", bps)
	case spc == 0 || spc&(spc-1) != 0:
		return nil, fmt.Errorf("%d sectors per cluster", spc)
	case rsvd == 0 || nfats == 0 || fatSz == 0:
		return nil, errors.New("no reserved sectors or no FAT")
	}
	rootSecs := (rootEnts*32 + bps - 1) / bps
	firstData := rsvd + nfats*fatSz + rootSecs
	if total <= firstData {
		return nil, errors.New("no data region")
	}
	v := &fatVolume{
		r:         r,
		sector:    bps,
		cluster:   bps * spc,
		fatStart:  rsvd * bps,
		rootStart: (rsvd + nfats*fatSz) * bps,
		rootSize:  rootEnts * 32,
		dataStart: firstData * bps,
		clusters:  uint32((total - firstData) / spc),
	}
	labelAt := 43
	switch {
	case v.clusters < 4085:
		v.bits = 12
	case v.clusters < 65525:
		v.bits = 16
	default:
		v.bits, labelAt = 32, 71
		v.rootCluster = binary.LittleEndian.Uint32(b[44:])
	}
	if v.bits != 32 && rootEnts == 0 {
		return nil, errors.New("FAT12/16 without a root directory")
	}
	// The FAT must hold an entry for every cluster.
	if fatSz*bps*8 < int64(v.clusters+2)*int64(v.bits) {
		return nil, errors.New("FAT smaller than the data region")
	}
	if b[labelAt-5] == 0x29 {
		v.bootLabel = strings.TrimRight(string(b[labelAt:labelAt+11]), " ")
		v.hasBootLabel = true
	}
	return v, nil
}

func openFAT(r io.ReaderAt) (*volFS, string, error) {
	b := make([]byte, 512)
	if err := readFull(r, b, 0); err != nil {
		return nil, "", err
	}
	v, err := parseFAT(r, b)
	if err != nil {
		return nil, "", err
	}
	root := entry{dir: true, id: int64(v.rootCluster), list: func() ([]entry, error) {
		list, _, err := v.rootDir()
		return list, err
	}}
	_, label, err := v.rootDir()
	if err != nil {
		return nil, "", err
	}
	if label == "" && v.hasBootLabel && v.bootLabel != "NO NAME" {
		label = v.bootLabel
	}
	return &volFS{root: root, match: strings.EqualFold}, label, nil
}

// next reads the FAT entry of cluster c: the next cluster of its chain,
// or 0 at its end.
func (v *fatVolume) next(c uint32) (uint32, error) {
	var n uint32
	switch v.bits {
	case 12:
		b := make([]byte, 2)
		if err := readFull(v.r, b, v.fatStart+int64(c)+int64(c/2)); err != nil {
			return 0, err
		}
		n = uint32(binary.LittleEndian.Uint16(b))
		if c%2 == 1 {
			n >>= 4
		}
		n &= 0xFFF
		if n >= 0xFF8 {
			return 0, nil
		}
	case 16:
		b := make([]byte, 2)
		if err := readFull(v.r, b, v.fatStart+2*int64(c)); err != nil {
			return 0, err
		}
		n = uint32(binary.LittleEndian.Uint16(b))
		if n >= 0xFFF8 {
			return 0, nil
		}
	default:
		b := make([]byte, 4)
		if err := readFull(v.r, b, v.fatStart+4*int64(c)); err != nil {
			return 0, err
		}
		n = binary.LittleEndian.Uint32(b) & 0x0FFFFFFF
		if n >= 0x0FFFFFF8 {
			return 0, nil
		}
	}
	if n < 2 || n >= v.clusters+2 {
		return 0, fmt.Errorf("cluster %d links to cluster %d", c, n)
	}
	return n, nil
}

// chain lists the clusters of a chain, at most max of them.
func (v *fatVolume) chain(start uint32, max int64) ([]uint32, error) {
	var out []uint32
	for c := start; c != 0; {
		if c < 2 || c >= v.clusters+2 {
			return nil, fmt.Errorf("cluster %d out of range", c)
		}
		if int64(len(out)) >= max {
			return nil, errors.New("cluster chain longer than its file, or a loop")
		}
		out = append(out, c)
		n, err := v.next(c)
		if err != nil {
			return nil, err
		}
		c = n
	}
	return out, nil
}

// chainReader reads a file stored in a cluster chain.
type chainReader struct {
	v        *fatVolume
	clusters []uint32
}

func (cr *chainReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		i := (off + int64(n)) / cr.v.cluster
		if i >= int64(len(cr.clusters)) {
			return n, io.EOF
		}
		within := (off + int64(n)) % cr.v.cluster
		m := min(int64(len(p)-n), cr.v.cluster-within)
		at := cr.v.dataStart + int64(cr.clusters[i]-2)*cr.v.cluster + within
		if err := readFull(cr.v.r, p[n:n+int(m)], at); err != nil {
			return n, err
		}
		n += int(m)
	}
	return n, nil
}

func (v *fatVolume) rootDir() ([]entry, string, error) {
	if v.bits == 32 {
		return v.dir(v.rootCluster, true)
	}
	b := make([]byte, v.rootSize)
	if err := readFull(v.r, b, v.rootStart); err != nil {
		return nil, "", err
	}
	list, label := v.entries(b)
	return list, label, nil
}

// dir reads the directory starting at cluster c.
func (v *fatVolume) dir(c uint32, root bool) ([]entry, string, error) {
	clusters, err := v.chain(c, maxDir/v.cluster+1)
	if err != nil {
		return nil, "", err
	}
	b := make([]byte, int64(len(clusters))*v.cluster)
	if _, err := (&chainReader{v: v, clusters: clusters}).ReadAt(b, 0); err != nil {
		return nil, "", err
	}
	list, label := v.entries(b)
	if !root {
		label = ""
	}
	return list, label, nil
}

// entries decodes 32-byte directory entries, joining long names.
func (v *fatVolume) entries(b []byte) ([]entry, string) {
	var out []entry
	var label string
	var lfn []uint16
	var lfnSum byte
	lfnNext := -1
	for pos := 0; pos+32 <= len(b); pos += 32 {
		d := b[pos : pos+32]
		if d[0] == 0 {
			break
		}
		if d[0] == 0xE5 {
			lfnNext = -1
			continue
		}
		attr := d[11]
		if attr&0x3F == 0x0F {
			ord := int(d[0] & 0x3F)
			if d[0]&0x40 != 0 {
				lfn, lfnSum, lfnNext = make([]uint16, 13*ord), d[13], ord
			}
			if ord == 0 || ord != lfnNext || d[13] != lfnSum || 13*ord > len(lfn) {
				lfnNext = -1
				continue
			}
			part := lfn[13*(ord-1):]
			for i, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				part[i] = binary.LittleEndian.Uint16(d[off:])
			}
			lfnNext--
			continue
		}
		long := ""
		if lfnNext == 0 && fatChecksum(d[:11]) == lfnSum {
			u := lfn
			for i, c := range u {
				if c == 0 {
					u = u[:i]
					break
				}
			}
			long = string(utf16.Decode(u))
		}
		lfnNext = -1
		if attr&0x08 != 0 {
			if attr&0x10 == 0 && label == "" {
				label = strings.TrimRight(string(d[:11]), " ")
			}
			continue
		}
		short := shortName(d)
		if short == "." || short == ".." {
			continue
		}
		name := long
		if name == "" {
			name = short
		}
		if name == "" || strings.ContainsAny(name, "/\x00") {
			continue
		}
		out = append(out, v.entry(d, name))
	}
	return out, label
}

func (v *fatVolume) entry(d []byte, name string) entry {
	start := uint32(binary.LittleEndian.Uint16(d[26:]))
	if v.bits == 32 {
		start |= uint32(binary.LittleEndian.Uint16(d[20:])) << 16
	}
	e := entry{name: name, dir: d[11]&0x10 != 0, size: int64(binary.LittleEndian.Uint32(d[28:])), mod: fatTime(d), id: int64(start)}
	if e.dir {
		e.size = 0
		e.list = func() ([]entry, error) {
			if start == 0 {
				return nil, fmt.Errorf("%s: directory without clusters", name)
			}
			list, _, err := v.dir(start, false)
			return list, err
		}
		return e
	}
	size := e.size
	e.open = func() (io.ReaderAt, error) {
		if size == 0 {
			return &chainReader{v: v}, nil
		}
		clusters, err := v.chain(start, (size+v.cluster-1)/v.cluster)
		if err != nil {
			return nil, err
		}
		if int64(len(clusters))*v.cluster < size {
			return nil, fmt.Errorf("%s: chain of %d clusters for %d bytes", name, len(clusters), size)
		}
		return &chainReader{v: v, clusters: clusters}, nil
	}
	return e
}

// shortName is an 8.3 name, lower-cased where Windows NT flags say so.
func shortName(d []byte) string {
	first := d[0]
	if first == 0x05 {
		first = 0xE5
	}
	base := strings.TrimRight(string(append([]byte{first}, d[1:8]...)), " ")
	ext := strings.TrimRight(string(d[8:11]), " ")
	if d[12]&0x08 != 0 {
		base = strings.ToLower(base)
	}
	if d[12]&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}

func fatChecksum(name []byte) byte {
	var sum byte
	for _, c := range name {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

func fatTime(d []byte) time.Time {
	t := binary.LittleEndian.Uint16(d[22:])
	day := binary.LittleEndian.Uint16(d[24:])
	return time.Date(1980+int(day>>9), time.Month(day>>5&0xF), int(day&0x1F), int(t>>11), int(t>>5&0x3F), int(t&0x1F)*2, 0, time.UTC)
}
