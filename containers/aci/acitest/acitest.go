// Package acitest builds App Container Images for tests: well-formed ones
// and hostile ones, as tar bytes, compressed in any of the ACI
// compressions.
package acitest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/kurmaos/kurma/containers/aci"
)

// Entry is one archive entry. Name is the full name in the archive
// ("rootfs/etc/hostname", "manifest").
type Entry struct {
	tar.Header
	Body []byte
}

// Epoch is the modification time of the entries Dir, File and Symlink make.
var Epoch = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// Dir is a directory entry with mode 0755.
func Dir(name string) Entry {
	return Entry{Header: tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: Epoch}}
}

// File is a regular file with mode 0644.
func File(name, body string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: Epoch}, Body: []byte(body)}
}

// Symlink is a symbolic link.
func Symlink(name, target string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: Epoch}}
}

// Hardlink is a hard link to target, a name in the archive.
func Hardlink(name, target string) Entry {
	return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, ModTime: Epoch}}
}

// Manifest is a minimal valid image manifest, with labels given as
// name, value pairs.
type Manifest struct {
	Name          string
	Labels        []string
	Dependencies  []Dependency
	PathWhitelist []string
	App           bool // add an app that runs /bin/true as root
}

// Dependency is a dependency of a Manifest.
type Dependency struct {
	Name    string
	ImageID string
	Labels  []string
}

// JSON renders the manifest.
func (m Manifest) JSON() []byte {
	type label struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	labels := func(kv []string) []label {
		var ls []label
		for i := 0; i+1 < len(kv); i += 2 {
			ls = append(ls, label{kv[i], kv[i+1]})
		}
		return ls
	}
	type dep struct {
		ImageName string  `json:"imageName"`
		ImageID   string  `json:"imageID,omitempty"`
		Labels    []label `json:"labels,omitempty"`
	}
	doc := map[string]any{
		"acKind":    "ImageManifest",
		"acVersion": "0.8.11",
		"name":      m.Name,
	}
	if ls := labels(m.Labels); ls != nil {
		doc["labels"] = ls
	}
	var deps []dep
	for _, d := range m.Dependencies {
		deps = append(deps, dep{d.Name, d.ImageID, labels(d.Labels)})
	}
	if deps != nil {
		doc["dependencies"] = deps
	}
	if m.PathWhitelist != nil {
		doc["pathWhitelist"] = m.PathWhitelist
	}
	if m.App {
		doc["app"] = map[string]any{"exec": []string{"/bin/true"}, "user": "0", "group": "0"}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

// HostLabels are the os and arch labels of this host, as name, value
// pairs, followed by extra.
func HostLabels(extra ...string) []string {
	os, arch, err := aci.HostPlatform()
	if err != nil {
		panic(err)
	}
	return append([]string{"os", os, "arch", arch}, extra...)
}

// Image is an ACI: the manifest, the rootfs/ directory, then the entries
// as given (their names include "rootfs/").
func Image(m Manifest, entries ...Entry) []byte {
	all := []Entry{File("manifest", string(m.JSON())), Dir("rootfs")}
	return Tar(append(all, entries...)...)
}

// Tar writes the entries as a tar archive.
func Tar(entries ...Entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.Body))
		}
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			panic(fmt.Sprintf("acitest: header %q: %v", h.Name, err))
		}
		if _, err := tw.Write(e.Body); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// RootFS is a sorted list of names made into rootfs/ entries: a name
// ending in "/" is a directory, others are files holding their own name.
func RootFS(names ...string) []Entry {
	sort.Strings(names)
	var es []Entry
	for _, n := range names {
		if n[len(n)-1] == '/' {
			es = append(es, Dir("rootfs/"+n[:len(n)-1]))
		} else {
			es = append(es, File("rootfs/"+n, n))
		}
	}
	return es
}

// ID is the appc image ID of uncompressed archive bytes.
func ID(tarBytes []byte) string {
	sum := sha512.Sum512(tarBytes)
	return "sha512-" + hex.EncodeToString(sum[:])
}

// Compress compresses data with "none", "gzip", "bzip2" or "xz". bzip2
// has no Go writer in the standard library, so it runs the bzip2 program;
// the error says so when it is missing.
func Compress(data []byte, how string) ([]byte, error) {
	var buf bytes.Buffer
	switch how {
	case "none":
		return data, nil
	case "gzip":
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(data); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case "xz":
		zw, err := xz.NewWriter(&buf)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(data); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case "bzip2":
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(data)
		cmd.Stdout = &buf
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("bzip2 program (package bzip2): %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown compression %q", how)
	}
	return buf.Bytes(), nil
}
