package image_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/image"
)

// benchImage is an ACI of about 48 MiB in 2,000 files of 1 KiB to 64 KiB
// (and a few of 1 MiB) in 100 directories: the shape of a distribution's
// userland.
func benchImage() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var es []acitest.Entry
	blob := make([]byte, 1<<20)
	for i := range blob {
		blob[i] = byte(r.IntN(64)) // compressible, as binaries are
	}
	for d := range 100 {
		dir := fmt.Sprintf("rootfs/usr/lib/d%03d", d)
		es = append(es, acitest.Dir(dir))
		for f := range 20 {
			n := 1<<10 + r.IntN(63<<10)
			if f == 0 && d%10 == 0 {
				n = 1 << 20
			}
			e := acitest.File(fmt.Sprintf("%s/f%02d", dir, f), "")
			e.Body, e.Size = blob[:n], int64(n)
			es = append(es, e)
		}
	}
	m := acitest.Manifest{Name: "example.com/bench", Labels: acitest.HostLabels("version", "1")}
	return acitest.Image(m, append([]acitest.Entry{acitest.Dir("rootfs/usr"), acitest.Dir("rootfs/usr/lib")}, es...)...)
}

// BenchmarkImportVsTar imports an image and, in the same run, extracts
// the same file with tar -x (GNU tar, gzip -d for .gz), and reports the
// ratio of their times: import/tar-x (1 is as fast as tar; import also
// hashes the whole stream and syncs the filesystem before committing).
func BenchmarkImportVsTar(b *testing.B) {
	tarPath, err := exec.LookPath("tar")
	if err != nil {
		b.Skip("no tar program to compare with")
	}
	raw := benchImage()
	for _, c := range []struct{ name, flag string }{{"none", "-xf"}, {"gzip", "-xzf"}} {
		b.Run(c.name, func(b *testing.B) {
			data, err := acitest.Compress(raw, c.name)
			if err != nil {
				b.Skip(err)
			}
			file := filepath.Join(b.TempDir(), "bench.aci")
			if err := os.WriteFile(file, data, 0o644); err != nil {
				b.Fatal(err)
			}
			s, err := image.Open(b.TempDir(), image.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(int64(len(raw)))
			var importTime, tarTime time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				img, err := s.Import(context.Background(), bytes.NewReader(data), image.ImportOptions{})
				if err != nil {
					b.Fatal(err)
				}
				importTime += time.Since(start)

				b.StopTimer()
				if err := s.Remove(context.Background(), img.ID); err != nil {
					b.Fatal(err)
				}
				dest := filepath.Join(b.TempDir(), fmt.Sprint(i))
				if err := os.Mkdir(dest, 0o755); err != nil {
					b.Fatal(err)
				}
				start = time.Now()
				if out, err := exec.Command(tarPath, c.flag, file, "-C", dest).CombinedOutput(); err != nil {
					b.Fatalf("tar: %v: %s", err, out)
				}
				tarTime += time.Since(start)
				if err := os.RemoveAll(dest); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(importTime)/float64(tarTime), "import/tar-x")
			b.ReportMetric(float64(len(raw))/tarTime.Seconds()*float64(b.N)/(1<<20), "tar-MB/s")
		})
	}
}
