package acitest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/rootfs"
)

// Hostile is an image that must be refused.
type Hostile struct {
	Name    string
	Archive []byte
	// Limits to unpack with (the zero value takes the defaults).
	Limits aci.Limits
	// Want is a part of the error message; Is, when set, an error the
	// returned error wraps.
	Want string
	Is   error
}

// Refused says what is wrong with err as the answer to this image: ""
// when it is an error that says what it should.
func (h Hostile) Refused(err error) string {
	switch {
	case err == nil:
		return "the image was accepted, want an error"
	case h.Want != "" && !strings.Contains(err.Error(), h.Want):
		return fmt.Sprintf("error %q does not say %q", err, h.Want)
	case h.Is != nil && !errors.Is(err, h.Is):
		return fmt.Sprintf("error %q is not %q", err, h.Is)
	}
	return ""
}

// HostileImages is the table of THREATS.md section A as archives. outside
// is an absolute directory outside the destination that symlinks aim at:
// nothing may ever be written there.
func HostileImages(outside string) []Hostile {
	m := Manifest{Name: "example.com/hostile", Labels: HostLabels()}
	img := func(es ...Entry) []byte { return Image(m, es...) }
	dev := Entry{Header: tar.Header{Name: "rootfs/dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Mode: 0o660, ModTime: Epoch}}
	withManifest := func(json string) []byte {
		return Tar(File("manifest", json), Dir("rootfs"))
	}
	return []Hostile{
		{Name: "dotdot in rootfs", Archive: img(File("rootfs/../../etc/cron.d/x", "* * * * * root sh")), Want: `".." component`},
		{Name: "dotdot at top", Archive: img(File("../x", "x")), Want: `".." component`},
		{Name: "absolute", Archive: img(File("/etc/x", "x")), Want: "is absolute"},
		{Name: "absolute after rootfs", Archive: img(File("rootfs//etc/x", "x")), Want: "empty component"},
		{Name: "very long name", Archive: img(File("rootfs/"+strings.Repeat("a/", 2100)+"x", "x")), Want: "longer than"},
		{Name: "long component", Archive: img(File("rootfs/"+strings.Repeat("a", 300), "x")), Want: "component longer than"},
		{Name: "outside rootfs", Archive: img(File("etc/passwd", "x")), Want: "outside rootfs/"},
		{Name: "symlink absolute then write", Archive: img(Symlink("rootfs/x", outside), File("rootfs/x/passwd", "x")), Is: rootfs.ErrThroughSymlink},
		{Name: "symlink dotdot then write", Archive: img(Symlink("rootfs/x", "../../../../../../.."), File("rootfs/x/passwd", "x")), Is: rootfs.ErrThroughSymlink},
		{Name: "symlink chained", Archive: img(Symlink("rootfs/a", "b"), Symlink("rootfs/b", outside), File("rootfs/a/passwd", "x")), Is: rootfs.ErrThroughSymlink},
		{Name: "symlink via parent", Archive: img(Dir("rootfs/d"), Symlink("rootfs/d/l", outside), File("rootfs/d/l/sub/file", "x")), Is: rootfs.ErrThroughSymlink},
		{Name: "symlink then directory", Archive: img(Symlink("rootfs/x", outside), Dir("rootfs/x/newdir")), Is: rootfs.ErrThroughSymlink},
		{Name: "dir shadowed by symlink", Archive: img(Dir("rootfs/var"), Dir("rootfs/var/www"), Symlink("rootfs/var/www", outside), File("rootfs/var/www/index", "x")), Is: rootfs.ErrThroughSymlink},
		{Name: "hardlink dotdot", Archive: img(Hardlink("rootfs/shadow", "../../../etc/shadow")), Want: `".." component`},
		{Name: "hardlink absolute", Archive: img(Hardlink("rootfs/shadow", "/etc/shadow")), Want: "is absolute"},
		{Name: "hardlink outside rootfs", Archive: img(Hardlink("rootfs/shadow", "etc/shadow")), Want: "outside rootfs/"},
		{Name: "hardlink through symlink", Archive: img(Symlink("rootfs/l", outside), Hardlink("rootfs/h", "rootfs/l/secret")), Is: rootfs.ErrThroughSymlink},
		{Name: "hardlink to directory", Archive: img(Dir("rootfs/d"), Hardlink("rootfs/h", "rootfs/d")), Want: "hard link to directory"},
		{Name: "device node", Archive: img(Dir("rootfs/dev"), dev), Is: rootfs.ErrDevice},
		{Name: "no manifest", Archive: Tar(Dir("rootfs"), File("rootfs/x", "x")), Is: aci.ErrNoManifest},
		{Name: "two manifests", Archive: Tar(File("manifest", string(m.JSON())), File("manifest", string(m.JSON()))), Want: "second manifest"},
		{Name: "manifest symlink", Archive: Tar(Symlink("manifest", "/etc/passwd"), Dir("rootfs")), Want: "not a regular file"},
		{Name: "schema: wrong kind", Archive: withManifest(`{"acKind":"PodManifest","acVersion":"0.8.11","name":"example.com/x"}`), Want: "invalid image manifest"},
		{Name: "schema: no name", Archive: withManifest(`{"acKind":"ImageManifest","acVersion":"0.8.11"}`), Want: "name must be set"},
		{Name: "schema: bad name", Archive: withManifest(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"Example.com/../x"}`), Want: "invalid image manifest"},
		{Name: "schema: bad os/arch pair", Archive: withManifest(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","labels":[{"name":"os","value":"linux"},{"name":"arch","value":"sparc"}]}`), Want: "invalid image manifest"},
		{Name: "schema: not JSON", Archive: withManifest(`{"acKind":`), Want: "invalid image manifest"},
		{Name: "schema: relative pathWhitelist", Archive: withManifest(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","pathWhitelist":["etc/x"]}`), Want: "pathWhitelist"},
		{Name: "wrong arch", Archive: Image(Manifest{Name: "example.com/x", Labels: []string{"os", "linux", "arch", otherArch()}}), Want: "this host is"},
		{Name: "wrong os", Archive: Image(Manifest{Name: "example.com/x", Labels: []string{"os", "freebsd", "arch", "amd64"}}), Want: `image is for os "freebsd"`},
		{Name: "huge manifest", Archive: withManifest(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","annotations":[` + strings.Repeat(`{"name":"a","value":"b"},`, 50000) + `{"name":"a","value":"b"}]}`), Limits: aci.Limits{MaxManifestBytes: 64 << 10}, Is: aci.ErrTooLarge},
		{Name: "deeply nested manifest", Archive: withManifest(`{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/x","annotations":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`), Want: "invalid image manifest"},
		{Name: "decompression bomb", Archive: gzipBomb(64 << 20), Limits: aci.Limits{MaxImageBytes: 8 << 20}, Is: aci.ErrTooLarge},
		{Name: "declared size bomb", Archive: sizeBomb(m), Limits: aci.Limits{MaxImageBytes: 8 << 20}, Is: aci.ErrTooLarge},
		{Name: "too many entries", Archive: img(RootFS("a", "b", "c", "d", "e", "f")...), Limits: aci.Limits{MaxEntries: 5}, Is: aci.ErrTooLarge},
		{Name: "xz dictionary bomb", Archive: xzDictBomb(img()), Is: aci.ErrTooLarge},
		{Name: "trailing garbage after gzip", Archive: append(mustGzip(img()), []byte("garbage")...), Want: "gzip"},
		{Name: "not an archive", Archive: []byte("this is not a tar file at all, just some text that goes on for a while"), Want: "read archive"},
	}
}

// otherArch is a valid linux arch that is not this host's.
func otherArch() string {
	if runtime.GOARCH == "s390x" {
		return "amd64"
	}
	return "s390x"
}

func mustGzip(b []byte) []byte {
	out, err := Compress(b, "gzip")
	if err != nil {
		panic(err)
	}
	return out
}

// gzipBomb is a gzip'd ACI holding a file of n zero bytes.
func gzipBomb(n int64) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	m := Manifest{Name: "example.com/bomb", Labels: HostLabels()}
	for _, e := range []Entry{File("manifest", string(m.JSON())), Dir("rootfs")} {
		h := e.Header
		h.Size = int64(len(e.Body))
		if err := tw.WriteHeader(&h); err != nil {
			panic(err)
		}
		if _, err := tw.Write(e.Body); err != nil {
			panic(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "rootfs/zeros", Typeflag: tar.TypeReg, Size: n, Mode: 0o644}); err != nil {
		panic(err)
	}
	zeros := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(zeros)) {
		if _, err := tw.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// sizeBomb declares a 1 TiB file but holds no data for it.
func sizeBomb(m Manifest) []byte {
	a := Image(m)
	var buf bytes.Buffer
	buf.Write(a[:len(a)-1024]) // without the end-of-archive blocks
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "rootfs/huge", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644}); err != nil {
		panic(err)
	}
	return buf.Bytes() // truncated on purpose: the size alone must fail
}

// xzDictBomb compresses an archive with xz and rewrites the first block's
// LZMA2 dictionary size to 4 GiB, as a hostile encoder could.
func xzDictBomb(a []byte) []byte {
	b, err := Compress(a, "xz")
	if err != nil {
		panic(err)
	}
	// Stream header (12 bytes), then block header: size, flags, filter
	// id 0x21, property size 1, the dictionary byte.
	const at = 12
	flags := b[at+1]
	if flags&0xc0 != 0 || b[at+2] != 0x21 || b[at+3] != 1 {
		panic(fmt.Sprintf("acitest: unexpected xz block header % x", b[at:at+8]))
	}
	b[at+4] = 40
	return b
}
