package pod_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/pod"
)

// The benchmarks compare Kurma with runc and crun (Debian's, installed by
// scripts/setup) on the same root filesystem, the busybox image rendered
// into an OCI bundle, measured in the same run, interleaved so that load
// from elsewhere hits them alike. Run them with make bench, or:
//
//	KURMA_BENCH=1 go test -run '^$' -bench . -benchtime 20x ./containers/pod/

// bundle renders the busybox image into an OCI bundle running args.
func bundle(b *testing.B, e *env, args ...string) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "bundle")
	if err := e.store.Render(context.Background(), e.busybox.ID, filepath.Join(dir, "rootfs")); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput(); err != nil {
		b.Fatalf("runc spec: %v %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		b.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		b.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["args"], proc["terminal"] = args, false
	if data, err = json.Marshal(spec); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// withoutUnified runs fn on a thread of its own in a mount namespace where
// /sys/fs/cgroup/unified is unmounted: crun 1.8 refuses the hybrid layout
// of the build machines otherwise (BOOT-FACTS.md). Processes fn starts
// from that thread inherit the namespace.
func withoutUnified(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is dropped afterwards
		if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			errc <- err
			return
		}
		if err := unix.Unmount("/sys/fs/cgroup/unified", unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// runtimeRun runs fn, which runs the OCI runtime name: crun from a
// thread that does not see the unified cgroup hierarchy.
func runtimeRun(name string, fn func() error) error {
	if name == "crun" {
		return withoutUnified(fn)
	}
	return fn()
}

func needTools(b *testing.B, tools ...string) {
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			b.Skipf("%s is not installed (scripts/setup installs it)", t)
		}
	}
}

// BenchmarkStartToExit measures the time from "create" to "app exited"
// of /bin/true in the busybox image: Kurma with the full kurma binary as
// the pods' init, with the lean kurma-stage binary, and with kurma-stage
// and no spare init (every init started on demand), runc run and crun
// run. It reports the median of each in ms and the ratios of medians.
func BenchmarkStartToExit(b *testing.B) {
	needTools(b, "runc", "crun")
	e := newEnv(b)
	dir := bundle(b, e, "/bin/true")
	// kurma and kurma-stage keep one spare init started ahead (the
	// default); kurma-cold starts every pod's init on demand.
	lean := filepath.Join(binDir, "kurma-stage")
	stages := map[string]struct {
		bin    string
		spares int
	}{"kurma": {stageBinary(), 0}, "kurma-stage": {lean, 0}, "kurma-cold": {lean, -1}}
	managers := map[string]*pod.Manager{}
	for name, st := range stages {
		o := e.opts
		o.Dir, o.RunDir = filepath.Join(b.TempDir(), "pods"), filepath.Join(e.opts.RunDir, name)
		o.StageBinary, o.Spares = st.bin, st.spares
		o.Logf = nil
		m, err := pod.Open(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		managers[name] = m
	}
	ctx := context.Background()
	samples := map[string][]time.Duration{}
	var rm []time.Duration
	kurma := func(name string) {
		m := managers[name]
		// Measured with a spare ready when the manager keeps one: the
		// time to start one again is the cold case's.
		for deadline := time.Now().Add(time.Second); stages[name].spares >= 0 && m.SparesReady() == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		p := runTrue(b, m, e.busybox.ID, nil, name, samples)
		start := time.Now()
		if err := m.Remove(ctx, p.UUID()); err != nil {
			b.Fatal(err)
		}
		if name == "kurma-stage" {
			rm = append(rm, time.Since(start))
		}
	}
	oci := func(name string, i int) {
		run := func() error {
			start := time.Now()
			out, err := exec.Command(name, "run", "--bundle", dir, fmt.Sprintf("bench-%d-%d", os.Getpid(), i)).CombinedOutput()
			samples[name] = append(samples[name], time.Since(start))
			if err != nil {
				return fmt.Errorf("%s run: %v %s", name, err, out)
			}
			return nil
		}
		if err := runtimeRun(name, run); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		kurma("kurma")
		kurma("kurma-stage")
		kurma("kurma-cold")
		oci("runc", i)
		oci("crun", i)
	}
	b.StopTimer()
	// Medians: the build machines are shared, and a burst of load from
	// elsewhere must not decide the ratios.
	median := map[string]float64{}
	for n, d := range samples {
		median[n] = medianMS(d)
	}
	for _, n := range []string{"kurma", "kurma-stage", "kurma-cold", "runc", "crun"} {
		b.ReportMetric(median[n], n+"-ms")
	}
	b.ReportMetric(medianMS(rm), "kurma-rm-ms")
	b.ReportMetric(median["kurma"]/median["crun"], "kurma/crun")
	b.ReportMetric(median["kurma-stage"]/median["crun"], "kurma-stage/crun")
	b.ReportMetric(median["kurma-cold"]/median["crun"], "kurma-cold/crun")
	b.ReportMetric(median["kurma-stage"]/median["runc"], "kurma-stage/runc")
	b.ReportMetric(0, "ns/op")
}

// runTrue runs /bin/true of the image in a pod with the pod isolators
// isos, and adds the time from create to exited to samples[name].
func runTrue(b *testing.B, m *pod.Manager, image string, isos types.Isolators, name string, samples map[string][]time.Duration) *pod.Pod {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	p, err := m.Create(ctx, pod.CreateOptions{Images: []pod.ImageApp{{Image: image, Name: "true"}}, Isolators: isos})
	if err != nil {
		b.Fatal(err)
	}
	st, err := p.Wait(ctx)
	samples[name] = append(samples[name], time.Since(start))
	if err != nil || st.State != pod.Exited || exitCodes(st)["true"] != 0 {
		b.Fatalf("%s: %+v %v", name, st, err)
	}
	return p
}

// medianMS is the median of ds, in milliseconds.
func medianMS(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}

// smaps reads the Rss and Pss (kB) of a process.
func smaps(b *testing.B, pid int) (rss, pss int) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		}
	}
	return rss, pss
}

// BenchmarkPodMemory measures what each running pod costs besides its
// app (sleep): the RSS and PSS of the process holding it, with 10 pods
// running, for Kurma's init (kurma and kurma-stage binaries), runc run
// and crun run in the foreground (each holds its container as Kurma's
// init does), and containerd's shim when containerd is installed.
func BenchmarkPodMemory(b *testing.B) {
	needTools(b, "runc", "crun")
	e := newEnv(b)
	dir := bundle(b, e, "/bin/sleep", "1000")
	const n = 10
	ctx := context.Background()
	report := func(name string, pids []int) {
		var rss, pss int
		for _, pid := range pids {
			r, p := smaps(b, pid)
			rss, pss = rss+r, pss+p
		}
		b.ReportMetric(float64(rss)/float64(len(pids)), name+"-RSS-kB")
		b.ReportMetric(float64(pss)/float64(len(pids)), name+"-PSS-kB")
	}
	for i := 0; i < b.N; i++ {
		for name, bin := range map[string]string{"kurma": stageBinary(), "kurma-stage": filepath.Join(binDir, "kurma-stage")} {
			o := e.opts
			o.Dir, o.RunDir = filepath.Join(b.TempDir(), "pods"), filepath.Join(e.opts.RunDir, name)
			o.StageBinary, o.Logf = bin, nil
			m, err := pod.Open(ctx, o)
			if err != nil {
				b.Fatal(err)
			}
			var pids []int
			for range n {
				p, err := m.Create(ctx, pod.CreateOptions{Images: []pod.ImageApp{{Image: e.busybox.ID, Name: "sleep", Exec: []string{"/bin/sleep", "1000"}}}})
				if err != nil {
					b.Fatal(err)
				}
				pids = append(pids, p.Status().Pid)
			}
			time.Sleep(3 * time.Second) // settled: the inits have compacted themselves
			report(name, pids)
			for _, p := range m.List() {
				if err := m.Remove(ctx, p.UUID()); err != nil {
					b.Fatal(err)
				}
			}
			m.Close()
		}
		for _, name := range []string{"runc", "crun"} {
			var cmds []*exec.Cmd
			start := func() error {
				for j := range n {
					cmd := exec.Command(name, "run", "--bundle", dir, fmt.Sprintf("mem-%d-%d-%d", os.Getpid(), i, j))
					cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
					if err := cmd.Start(); err != nil {
						return err
					}
					cmds = append(cmds, cmd)
				}
				return nil
			}
			if err := runtimeRun(name, start); err != nil {
				b.Fatal(err)
			}
			time.Sleep(time.Second)
			var pids []int
			for _, c := range cmds {
				pids = append(pids, c.Process.Pid)
			}
			report(name, pids)
			for j := range cmds {
				kill := exec.Command(name, "kill", fmt.Sprintf("mem-%d-%d-%d", os.Getpid(), i, j), "KILL")
				_ = runtimeRun(name, kill.Run) // the container ends with its holder below anyway
			}
			for _, c := range cmds {
				_ = c.Wait() // killed above
			}
		}
		if pids := containerdShims(b, dir, n); pids != nil {
			report("containerd-shim", pids)
		}
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkUserNamespaceStart measures create → app exited of /bin/true
// in a pod in a user namespace, with the image store ID-mapped
// ("idmapped") and with a copy of the image owned by the pod's IDs
// ("copy", where ID-mapped mounts are missing), beside a pod in the
// host's user namespace started without a spare init ("cold"), all with
// the kurma-stage init, interleaved. It reports the medians in ms.
func BenchmarkUserNamespaceStart(b *testing.B) {
	e := newEnv(b, func(o *pod.Options) {
		o.StageBinary, o.Spares, o.Logf = filepath.Join(binDir, "kurma-stage"), -1, nil
		o.UserNamespaces = pod.IDPool{FirstID: 0x32000000, Ranges: 4}
	})
	ctx := context.Background()
	var userNS types.Isolator
	if err := json.Unmarshal([]byte(`{"name": "os/linux/namespaces", "value": {"user": "child"}}`), &userNS); err != nil {
		b.Fatal(err)
	}
	samples := map[string][]time.Duration{}
	run := func(name string, isos types.Isolators, copyRoots bool) {
		e.m.SetCopyRoots(copyRoots)
		p := runTrue(b, e.m, e.busybox.ID, isos, name, samples)
		if err := e.m.Remove(ctx, p.UUID()); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run("cold", nil, false)
		run("idmapped", types.Isolators{userNS}, false)
		run("copy", types.Isolators{userNS}, true)
	}
	b.StopTimer()
	for _, n := range []string{"cold", "idmapped", "copy"} {
		b.ReportMetric(medianMS(samples[n]), n+"-ms")
	}
	b.ReportMetric(0, "ns/op")
}
