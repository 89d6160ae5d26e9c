package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kurmaos/kurma/initrd"
	"github.com/kurmaos/kurma/tests/qemu"
)

// BenchmarkBoot boots Kurma to `kurma: ready` and, in the same run, the
// same kernel with a baseline initramfs whose /init (busybox) only reads
// /proc/uptime and powers off: the ratio is Kurma's boot over the bare
// kernel's. It reports each phase of Kurma's timeline too.
func BenchmarkBoot(b *testing.B) {
	qemu.Skip(b)
	baseline := baselineInitrd(b)
	var kurmaMs, baseMs, kurmaWall, baseWall float64
	phases := map[string]float64{}
	for i := 0; i < b.N; i++ {
		start := time.Now()
		vm := qemu.Start(b, qemu.Options{Initrd: baseline, Append: []string{"rdinit=/init"}})
		up := vm.Expect(b, `baseline: init at ([0-9.]+) s`, bootTimeout)[1]
		baseWall += float64(time.Since(start).Milliseconds())
		s, _ := strconv.ParseFloat(up, 64)
		baseMs += s * 1000
		vm.WaitExit(b, time.Minute)

		start = time.Now()
		vm = qemu.Start(b, qemu.Options{})
		vm.Expect(b, `kurma: boot timeline:`, bootTimeout)
		for {
			m := vm.Expect(b, `kurma:   (\S+) +(\d+) ms`, time.Minute)
			v, _ := strconv.ParseFloat(m[2], 64)
			if m[1] == "total" {
				kurmaMs += v
				break
			}
			phases[m[1]] += v
		}
		vm.Expect(b, `kurma: ready`, time.Minute)
		kurmaWall += float64(time.Since(start).Milliseconds())
		vm.SendKey(b, "ctrl-alt-delete")
		vm.WaitExit(b, time.Minute)
	}
	n := float64(b.N)
	b.ReportMetric(kurmaMs/n, "ms-kurma-ready")
	b.ReportMetric(baseMs/n, "ms-baseline-init")
	b.ReportMetric(kurmaMs/baseMs, "ratio-ready/baseline")
	b.ReportMetric(kurmaWall/n, "ms-wall-kurma")
	b.ReportMetric(baseWall/n, "ms-wall-baseline")
	for p, v := range phases {
		b.ReportMetric(v/n, "ms-phase-"+p)
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkImageSize reports the size of the image's parts.
func BenchmarkImageSize(b *testing.B) {
	qemu.Skip(b)
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		fi, err := os.Stat(filepath.Join(qemu.ImageDir(), f))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-"+f)
	}
	b.ReportMetric(0, "ns/op")
}

// baselineInitrd builds an initramfs whose /init is a busybox script that
// prints the uptime at which it started and powers off.
func baselineInitrd(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	script := filepath.Join(dir, "init")
	err := os.WriteFile(script, []byte(`#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
read up idle < /proc/uptime
echo "baseline: init at $up s"
/bin/busybox poweroff -f
`), 0o755)
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "baseline.img")
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	_, err = initrd.Build(initrd.Spec{
		Init:  script,
		Files: map[string]initrd.File{"bin/busybox": {Source: "/bin/busybox", Mode: 0o755}},
	}, f)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
