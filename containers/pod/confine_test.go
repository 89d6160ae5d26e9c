package pod_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/cgroup"
	"github.com/kurmaos/kurma/containers/pod"
)

// The isolators, read from inside pods by the probe (testdata/probe).

func iso(name, value string) types.Isolator {
	var i types.Isolator
	if err := json.Unmarshal([]byte(`{"name":"`+name+`","value":`+value+`}`), &i); err != nil {
		panic(err)
	}
	return i
}

// probeImage imports the busybox image with the probe at /probe.
func (e *env) probeImage() string {
	e.t.Helper()
	body, err := os.ReadFile(filepath.Join(binDir, "probe"))
	if err != nil {
		e.t.Fatal(err)
	}
	f := acitest.File("rootfs/probe", string(body))
	f.Mode = 0o755
	return e.importImage(busyboxImage(e.t, "example.com/probe", nil, f)).ID
}

// facts parses the probe's report.
func facts(log string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(log, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// capMask is the /proc/PID/status mask of capability numbers.
func capMask(caps ...int) string {
	var m uint64
	for _, c := range caps {
		m |= 1 << c
	}
	return fmt.Sprintf("%016x", m)
}

// hostCaps is the test's own bounding set (a host may lack some).
func hostCaps(t *testing.T) uint64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no CapBnd")
	return 0
}

const (
	capChown, capDacOverride, capFowner, capFsetid, capKill, capSetgid, capSetuid, capSetpcap = 0, 1, 3, 4, 5, 6, 7, 8
	capNetBindService, capNetRaw, capSysChroot, capMknod, capAuditWrite, capSetfcap           = 10, 13, 18, 27, 29, 31
)

var defaultCaps = []int{capChown, capDacOverride, capFowner, capFsetid, capKill, capSetgid, capSetuid, capSetpcap, capNetBindService, capNetRaw, capSysChroot, capMknod, capAuditWrite, capSetfcap}

// probe runs the probe as one app with isolators, and returns its facts
// and the pod's status.
func (e *env) probe(t *testing.T, img string, opts pod.CreateOptions, app pod.ImageApp) (map[string]string, pod.Status) {
	t.Helper()
	if app.Name == "" {
		app.Name = "probe"
	}
	app.Image = img
	if app.Exec == nil {
		app.Exec = []string{"/probe"}
	}
	opts.Images = append([]pod.ImageApp{app}, opts.Images...)
	p, st := e.run(opts)
	return facts(logOf(p, app.Name)), st
}

// THREATS.md B and C: what a default pod's app cannot do, and how it is
// confined; entered commands and handlers are confined alike (29).
func TestDefaultConfinement(t *testing.T) {
	e := newEnv(t)
	img := e.probeImage()
	pre := types.EventHandler{Name: "pre-start", Exec: []string{"/bin/sh", "-c", "/probe > /tmp/prestart"}}
	pm, err := pod.ManifestFromImages(e.store, []pod.ImageApp{{Image: img, Name: "probe", Exec: []string{"/bin/sh", "-c", "/probe; cat /tmp/prestart | sed s/^/pre:/; sleep 5"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pm.Apps[0].App.EventHandlers = []types.EventHandler{pre}
	p := e.create(pod.CreateOptions{Manifest: pm})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logOf(p, "probe"), "pre:cwd=") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	var out strings.Builder
	if _, err := p.Enter(context.Background(), pod.EnterOptions{App: "probe", Args: []string{"/probe"}, Stdout: &out, Stderr: &out}); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	log := logOf(p, "probe")
	pre2 := map[string]string{}
	for k, v := range facts(log) {
		if name, ok := strings.CutPrefix(k, "pre:"); ok {
			pre2[name] = v
		}
	}
	want := map[string]string{
		"CapBnd": capMask(defaultCaps...), "CapEff": capMask(defaultCaps...), "CapPrm": capMask(defaultCaps...),
		"CapInh": capMask(), "CapAmb": capMask(), "NoNewPrivs": "1", "Seccomp": "2", "Seccomp_filters": "1",
		"mount": "EPERM", "mount_cgroup": "EPERM", "unshare_user": "EPERM", "unshare_mnt": "EPERM",
		"init_module": "EPERM", "finit_module": "EPERM", "ptrace_init": "EPERM",
		"init_exe": "EACCES", "init_root": "EACCES", "cwd": "/",
		// The init is never the OOM killer's choice; its processes get
		// what it inherited (the test's own), and may not go lower.
		"init_oom_score_adj": initOOMScoreAdj(t), "oom_score_adj": ownOOMScoreAdj(t), "oom_lower": "EACCES",
	}
	for name, got := range map[string]map[string]string{"app": facts(log), "entered command": facts(out.String()), "pre-start handler": pre2} {
		for k, v := range want {
			if name != "app" && k == "cwd" {
				continue
			}
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got[k], v)
			}
		}
		if got["sysrq"] == "ok" || got["sysrq"] == "" {
			t.Errorf("%s: writing /proc/sysrq-trigger: %q, want an error", name, got["sysrq"])
		}
	}
	st := p.Status()
	for _, s := range st.Isolators {
		t.Errorf("a pod without isolators reports %+v", s)
	}
}

func TestCapabilityIsolatorsInPods(t *testing.T) {
	e := newEnv(t)
	img := e.probeImage()
	t.Run("app retain set", func(t *testing.T) {
		f, _ := e.probe(t, img, pod.CreateOptions{}, pod.ImageApp{Isolators: types.Isolators{iso("os/linux/capabilities-retain-set", `{"set":["CAP_NET_BIND_SERVICE","CAP_KILL"]}`)}})
		if want := capMask(capNetBindService, capKill); f["CapBnd"] != want || f["CapEff"] != want || f["CapInh"] != capMask() {
			t.Errorf("facts %v, want bounding and effective %s", f, want)
		}
		if f["chmod"] != "ok" {
			t.Errorf("chmod %s: the default seccomp filter must allow it", f["chmod"])
		}
	})
	t.Run("pod remove set bounds the app's", func(t *testing.T) {
		f, st := e.probe(t, img, pod.CreateOptions{Isolators: types.Isolators{iso("os/linux/capabilities-remove-set", `{"set":["CAP_CHOWN","CAP_KILL"]}`)}},
			pod.ImageApp{Isolators: types.Isolators{iso("os/linux/capabilities-retain-set", `{"set":["CAP_CHOWN","CAP_MKNOD"]}`)}})
		if want := capMask(capMknod); f["CapBnd"] != want {
			t.Errorf("bounding %s, want %s (%+v)", f["CapBnd"], want, st.Isolators)
		}
	})
	t.Run("non-root user", func(t *testing.T) {
		f, _ := e.probe(t, img, pod.CreateOptions{}, pod.ImageApp{User: "1000", Group: "1000"})
		if f["CapBnd"] != capMask(defaultCaps...) || f["CapEff"] != capMask() || f["CapPrm"] != capMask() || !strings.HasPrefix(f["Uid"], "1000 ") {
			t.Errorf("facts %v", f)
		}
	})
}

func TestSeccompIsolatorsInPods(t *testing.T) {
	e := newEnv(t)
	img := e.probeImage()
	t.Run("app remove set with errno", func(t *testing.T) {
		f, _ := e.probe(t, img, pod.CreateOptions{}, pod.ImageApp{Isolators: types.Isolators{iso("os/linux/seccomp-remove-set", `{"set":["chmod","fchmodat"],"errno":"EACCES"}`)}})
		if f["chmod"] != "EACCES" || f["mount"] != "EPERM" || f["Seccomp_filters"] != "1" {
			t.Errorf("facts %v, want chmod EACCES, the default list kept", f)
		}
	})
	t.Run("pod remove set without errno kills", func(t *testing.T) {
		f, st := e.probe(t, img, pod.CreateOptions{Isolators: types.Isolators{iso("os/linux/seccomp-remove-set", `{"set":["sethostname"]}`)}}, pod.ImageApp{})
		if a := st.Apps[0]; a.Exit == nil || a.Exit.Signal != "bad system call" || f["chmod"] != "ok" {
			t.Errorf("exit %+v, facts %v: want killed by SIGSYS at sethostname", a.Exit, f)
		}
	})
	t.Run("retain set", func(t *testing.T) {
		_, st := e.probe(t, img, pod.CreateOptions{}, pod.ImageApp{Exec: []string{"/bin/sh", "-c", "exit 3"},
			Isolators: types.Isolators{iso("os/linux/seccomp-retain-set", `{"set":["@appc.io/all"]}`)}})
		if a := st.Apps[0]; a.Exit == nil || a.Exit.Code != 3 {
			t.Errorf("retain all: %+v", a.Exit)
		}
		_, st = e.probe(t, img, pod.CreateOptions{}, pod.ImageApp{Exec: []string{"/bin/sh", "-c", "exit 3"},
			Isolators: types.Isolators{iso("os/linux/seccomp-retain-set", `{"set":["read"],"errno":"ENOSYS"}`)}})
		if a := st.Apps[0]; a.Exit == nil || a.Exit.Code == 3 {
			t.Errorf("a shell with only read: %+v, want it to fail", a.Exit)
		}
	})
}

func TestNoNewPrivilegesAndOOMScoreInPods(t *testing.T) {
	e := newEnv(t)
	img := e.probeImage()
	f, _ := e.probe(t, img, pod.CreateOptions{Isolators: types.Isolators{iso("os/linux/oom-score-adj", "300")}},
		pod.ImageApp{Isolators: types.Isolators{iso("os/linux/no-new-privileges", "false")}})
	if f["NoNewPrivs"] != "0" || f["oom_score_adj"] != "300" {
		t.Errorf("facts %v: want no_new_privs off (the app's), oom_score_adj 300 (the pod's)", f)
	}
	f, _ = e.probe(t, img, pod.CreateOptions{Isolators: types.Isolators{iso("os/linux/oom-score-adj", "300"), iso("os/linux/no-new-privileges", "false")}},
		pod.ImageApp{Isolators: types.Isolators{iso("os/linux/oom-score-adj", "700")}})
	if f["NoNewPrivs"] != "0" || f["oom_score_adj"] != "700" {
		t.Errorf("facts %v: want no_new_privs off (the pod's), oom_score_adj 700 (the app's)", f)
	}
}

// hierarchiesToTest are the cgroup layouts of this host: the detected
// one and v1 where the host has it.
func hierarchiesToTest(t *testing.T) map[string]*cgroup.Hierarchy {
	hs := map[string]*cgroup.Hierarchy{}
	if h, err := cgroup.Detect("kurma-test-limits"); err == nil {
		hs[fmt.Sprintf("detected v%d", h.Version)] = h
	}
	if h, err := cgroup.NewV1("kurma-test-limits-v1"); err == nil {
		hs["v1"] = h
	}
	return hs
}

func TestCgroupLimitsInPods(t *testing.T) {
	privileged(t)
	for name, h := range hierarchiesToTest(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(o *pod.Options) { o.Cgroups = h })
			img := e.probeImage()
			podIsos := types.Isolators{
				iso("resource/memory", `{"limit":"256Mi"}`), iso("resource/cpu", `{"limit":"1500m"}`),
				iso(pod.PidsLimitIsolator, "200"), iso("resource/block-bandwidth", `{"default":true,"limit":"10M"}`),
			}
			appIsos := types.Isolators{
				iso("resource/memory", `{"limit":"64Mi","request":"32Mi"}`), iso("resource/cpu", `{"limit":"250m"}`),
				iso("os/linux/cpu-shares", "512"), iso(pod.PidsLimitIsolator, "20"), iso("resource/block-iops", `{"default":true,"limit":"100"}`),
			}
			other := pod.ImageApp{Image: img, Name: "other", Exec: []string{"/probe"}}
			opts := pod.CreateOptions{Isolators: podIsos, Images: []pod.ImageApp{other}}
			p, st := e.run(pod.CreateOptions{Isolators: podIsos, Images: []pod.ImageApp{{Image: img, Name: "probe", Exec: []string{"/probe"}, Isolators: appIsos}, other}})
			_ = opts
			for _, s := range st.Isolators {
				if s.Status != pod.Enforced {
					t.Errorf("isolator %+v", s)
				}
			}
			app, podF := facts(logOf(p, "probe")), facts(logOf(p, "other"))
			var want, wantPod map[string]string
			if h.Controllers["memory"] == h.Roots[0] && h.Version == cgroup.V2 {
				want = map[string]string{"memory.max": "67108864", "memory.low": "33554432", "cpu.max": "25000 100000", "cpu.weight": "20", "pids.max": "20"}
				wantPod = map[string]string{"memory.max": "268435456", "cpu.max": "150000 100000", "pids.max": "200"}
			} else {
				want = map[string]string{"memory/memory.limit_in_bytes": "67108864", "memory/memory.soft_limit_in_bytes": "33554432", "cpu/cpu.cfs_quota_us": "25000", "cpu/cpu.shares": "512", "pids/pids.max": "20"}
				wantPod = map[string]string{"memory/memory.limit_in_bytes": "268435456", "cpu/cpu.cfs_quota_us": "150000", "pids/pids.max": "200"}
			}
			for k, v := range want {
				if app["cg:"+k] != v {
					t.Errorf("app: %s = %q, want %q", k, app["cg:"+k], v)
				}
			}
			for k, v := range wantPod {
				if podF["cg:"+k] != v {
					t.Errorf("app without limits (the pod's): %s = %q, want %q", k, podF["cg:"+k], v)
				}
			}
			// The block limits, read from the host.
			io := readIO(t, p, h, "probe")
			if !strings.Contains(io, "100") {
				t.Errorf("app's block I/O limits %q, want 100 operations/s", io)
			}
			checkRemoved(t, e, p)
		})
	}
}

// readIO reads the block I/O limits of an app's group from the host.
func readIO(t *testing.T, p *pod.Pod, h *cgroup.Hierarchy, app string) string {
	t.Helper()
	root := h.Controllers["io"]
	dir := filepath.Join(root, h.Parent, p.UUID(), cgroup.AppsGroup, cgroup.AppLeaf(app))
	if root == h.Roots[0] && h.Version == cgroup.V2 {
		return readFile(filepath.Join(dir, "io.max"))
	}
	return readFile(filepath.Join(dir, "blkio.throttle.write_iops_device"))
}

// THREATS.md C.31: a memory hog is killed in its group, and says so; a
// fork bomb stops at pids.max.
func TestLimitsHold(t *testing.T) {
	privileged(t)
	for name, h := range hierarchiesToTest(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(o *pod.Options) { o.Cgroups = h })
			img := e.probeImage()
			for _, level := range []string{"pod", "app"} {
				mem := types.Isolators{iso("resource/memory", `{"limit":"32Mi"}`)}
				opts, app := pod.CreateOptions{}, pod.ImageApp{Exec: []string{"/probe", "alloc", "200"}}
				if level == "pod" {
					opts.Isolators = mem
				} else {
					app.Isolators = mem
				}
				_, st := e.probe(t, img, opts, app)
				if a := st.Apps[0]; a.Exit == nil || a.Exit.Signal != "killed" || !a.OOMKilled {
					t.Errorf("%s limit: memory hog ended %+v (OOM killed %v), want killed by the OOM killer", level, a.Exit, a.OOMKilled)
				}
				// A fork bomb stops at the limit; a few processes under
				// it run. The pod's init (a Go program: 5 to 8 threads)
				// is out of the pod's group: a pod-level limit of 8
				// counts only the apps' 6.
				pids := types.Isolators{iso(pod.PidsLimitIsolator, "8")}
				for _, c := range []struct{ name, script, want string }{
					{"bomb", "i=0; while [ $i -lt 100 ]; do sleep 3 & i=$((i+1)); done; echo all started; exit 0", ""},
					{"few", "for i in 1 2 3 4 5; do sleep 1 & done; wait; echo five ran", "five ran"},
				} {
					app := pod.ImageApp{Image: img, Name: c.name, Exec: []string{"/bin/sh", "-c", c.script}}
					opts := pod.CreateOptions{Images: []pod.ImageApp{app}}
					if level == "pod" {
						opts.Isolators = pids
					} else {
						opts.Images[0].Isolators = pids
					}
					p, st := e.run(opts)
					log := logOf(p, c.name)
					switch {
					case c.want == "" && (strings.Contains(log, "all started") || !strings.Contains(log, "fork")):
						t.Errorf("%s limit: 100 forks under pids.max 8 all worked (%+v): %q", level, st.Apps[0].Exit, log)
					case c.want != "" && (st.State != pod.Exited || !strings.Contains(log, c.want)):
						t.Errorf("%s limit: 6 processes under pids.max 8: %s %q (%s)", level, st.State, log, st.Error)
					}
				}
			}
		})
	}
}

func TestPrivilegedAndAPIAccess(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e := newEnv(t, func(o *pod.Options) { o.APISocket = sock })
	img := e.probeImage()
	for _, level := range []string{"pod", "app"} {
		for _, name := range []string{pod.PrivilegedIsolator, pod.APIAccessIsolator} {
			isos := types.Isolators{iso(name, "true")}
			opts, app := pod.CreateOptions{}, pod.ImageApp{Image: img, Name: "probe", Exec: []string{"/bin/sh", "-c", "/probe; test -S /run/kurma/kurma.sock && echo api=yes; ls /dev | wc -l | sed s/^/devices=/"}}
			if level == "pod" {
				opts.Isolators = isos
			} else {
				app.Isolators = isos
			}
			opts.Images = []pod.ImageApp{app}
			if _, err := e.m.Create(context.Background(), opts); !errors.Is(err, pod.ErrForbidden) {
				t.Errorf("%s at %s level without AllowPrivileged: %v, want ErrForbidden", name, level, err)
			}
			opts.AllowPrivileged = true
			p, _ := e.run(opts)
			f := facts(logOf(p, "probe"))
			n, _ := strconv.Atoi(f["devices"])
			if name == pod.PrivilegedIsolator {
				if f["CapBnd"] != fmt.Sprintf("%016x", hostCaps(t)) || f["Seccomp"] != "0" || f["NoNewPrivs"] != "0" || f["mount"] != "ok" || n < 20 {
					t.Errorf("privileged at %s level: %v", level, f)
				}
			} else if f["api"] != "yes" || f["CapBnd"] != capMask(defaultCaps...) {
				t.Errorf("api access at %s level: %v", level, f)
			}
		}
	}
}

func TestSysctlIsolatorInPods(t *testing.T) {
	e := newEnv(t)
	p, st := e.run(pod.CreateOptions{Isolators: types.Isolators{iso("os/unix/sysctl", `{"net.ipv4.ip_forward":"1","kernel.shmmni":"1234"}`)},
		Images: []pod.ImageApp{e.sh("app", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")}})
	if got := strings.Fields(logOf(p, "app")); st.State != pod.Exited || strings.Join(got, " ") != "1 1234" {
		t.Errorf("sysctls in the pod: %q (%s)", got, st.State)
	}
	if data, _ := os.ReadFile("/proc/sys/kernel/shmmni"); strings.TrimSpace(string(data)) == "1234" {
		t.Error("the pod's sysctl changed the host's")
	}
}

func TestCapacity(t *testing.T) {
	e := newEnv(t)
	c := e.m.Capacity()
	if c.CPUTotal == 0 || c.MemoryTotal == 0 || c.CPURequested != 0 {
		t.Fatalf("capacity %+v", c)
	}
	e.m.Close()
	e.opts.ReservedCPU = c.CPUTotal - 1000 // one core left
	e.opts.ReservedMemory = 1 << 30
	e.open()
	cpu := func(q string) types.Isolators { return types.Isolators{iso("resource/cpu", `{"request":"`+q+`"}`)} }
	if _, err := e.m.Create(context.Background(), pod.CreateOptions{Isolators: cpu("2"), Images: []pod.ImageApp{e.sh("a", "true")}}); !errors.Is(err, pod.ErrNoCapacity) || !strings.Contains(err.Error(), "1 cores of CPU") {
		t.Errorf("a pod asking 2 cores of 1: %v", err)
	}
	p1 := e.create(pod.CreateOptions{Isolators: cpu("600m"), Images: []pod.ImageApp{e.sh("a", "sleep 10")}})
	if got := e.m.Capacity(); got.CPURequested != 600 || got.CPUAllocatable != 1000 || got.MemoryAllocatable != c.MemoryTotal-1<<30 {
		t.Errorf("capacity with a pod %+v", got)
	}
	if _, err := e.m.Create(context.Background(), pod.CreateOptions{Isolators: cpu("600m"), Images: []pod.ImageApp{e.sh("a", "true")}}); !errors.Is(err, pod.ErrNoCapacity) || !strings.Contains(err.Error(), "0.4 cores of CPU") {
		t.Errorf("a second pod of 600m: %v", err)
	}
	if _, err := e.m.Create(context.Background(), pod.CreateOptions{Images: []pod.ImageApp{{Image: e.busybox.ID, Name: "a", Exec: []string{"true"},
		Isolators: types.Isolators{iso("resource/memory", `{"limit":"`+strconv.FormatInt(c.MemoryTotal, 10)+`"}`)}}}}); !errors.Is(err, pod.ErrNoCapacity) {
		t.Errorf("a pod asking all the memory: %v", err)
	}
	if err := e.m.Remove(context.Background(), p1.UUID()); err != nil {
		t.Fatal(err)
	}
	if got := e.m.Capacity(); got.CPURequested != 0 || got.MemoryRequested != 0 {
		t.Errorf("capacity after removal %+v, want nothing requested", got)
	}
}

// ownOOMScoreAdj is the test process's oom_score_adj, which the daemon's
// pods inherit by default.
func ownOOMScoreAdj(t *testing.T) string {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// initOOMScoreAdj is what a pod's init should have: -1000 where the
// daemon holds CAP_SYS_RESOURCE (on the Kurma OS, which tests/e2e
// checks), else what it inherited (this build machine's sandbox withholds
// that capability).
func initOOMScoreAdj(t *testing.T) string {
	var data [2]unix.CapUserData
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	if data[0].Effective&(1<<unix.CAP_SYS_RESOURCE) != 0 {
		return "-1000"
	}
	t.Logf("no CAP_SYS_RESOURCE here: the pod's init cannot lower its oom_score_adj")
	return ownOOMScoreAdj(t)
}
