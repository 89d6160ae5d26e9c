package pod_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/pod"
)

// testIDPool is the IDs the tests' pods in user namespaces get.
var testIDPool = pod.IDPool{FirstID: 0x30000000, Ranges: 4}

func userNS() types.Isolator { return iso(pod.NamespacesIsolator, `{"user": "child"}`) }

// hostPid finds the host's PID of the process that is podPid in the pod
// whose init is the host's initPid.
func hostPid(t *testing.T, initPid, podPid int) int {
	t.Helper()
	podNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", initPid))
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); ns != podNS {
			continue
		}
		for _, l := range strings.Split(readFile(fmt.Sprintf("/proc/%d/status", pid)), "\n") {
			if v, ok := strings.CutPrefix(l, "NSpid:"); ok {
				f := strings.Fields(v)
				if len(f) > 1 && f[len(f)-1] == strconv.Itoa(podPid) {
					return pid
				}
			}
		}
	}
	t.Fatalf("no process is %d in the pod of init %d", podPid, initPid)
	return 0
}

// procStatus reads fields of /proc/PID/status, spaces squeezed.
func procStatus(t *testing.T, pid int, keys ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range strings.Split(readFile(fmt.Sprintf("/proc/%d/status", pid)), "\n") {
		k, v, _ := strings.Cut(l, ":")
		for _, want := range keys {
			if k == want {
				m[k] = strings.Join(strings.Fields(v), " ")
			}
		}
	}
	return m
}

// waitLog waits until the app's log has line.
func waitLog(t *testing.T, p *pod.Pod, app, line string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		log := logOf(p, app)
		if strings.Contains(log, line) {
			return log
		}
		if time.Now().After(deadline) || p.Status().State.Ended() {
			t.Fatalf("app %s did not say %q; log:\n%s\nstatus %+v", app, line, log, p.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A pod in a user namespace: its app is root inside and an unprivileged
// ID outside, read from the host's /proc; it owns its root filesystem
// and its empty volume, reads a host volume as its owners allow,
// binds a low port and sets up cgroups below its own. With ID-mapped
// image layers (this host has them) and with the copies made where
// they are missing.
func TestUserNamespace(t *testing.T) {
	for _, c := range []struct {
		name string
		copy bool
		root string
	}{
		{"id-mapped layers", false, "the images' layers, ID-mapped"},
		{"chowned copies", true, "copies of the images owned by the namespace's IDs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(o *pod.Options) { o.UserNamespaces = pod.IDPool{FirstID: testIDPool.FirstID, Ranges: 1} })
			e.m.SetCopyRoots(c.copy)
			img := e.probeImage()
			host := t.TempDir()
			if err := os.Chmod(host, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name string
				mode os.FileMode
				uid  int
			}{{"public", 0o644, 0}, {"secret", 0o600, 0}, {"mine", 0o600, int(testIDPool.FirstID) + 1000}} {
				if err := os.WriteFile(filepath.Join(host, f.name), []byte(f.name+"\n"), f.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(filepath.Join(host, f.name), f.uid, f.uid); err != nil {
					t.Fatal(err)
				}
			}
			script := `/probe
echo hostname=$(hostname)
echo whoami=$(id -u):$(id -g)
echo x > /written && echo rootfs=ok
echo x > /etc/passwd.new && echo etc=ok
echo x > /data/f && echo empty=$(stat -c %u:%g:%a /data)
echo host=$(stat -c %u:%g /h/public /h/mine | tr '\n' ' ')
cat /h/public
cat /h/secret 2>/dev/null || echo secret=denied
echo x >> /h/public 2>/dev/null || echo public-write=denied
(timeout 1 nc -l -p 80 2>&1; echo nc=$?) | tr '\n' ' '; echo
wget -qO- "$AC_METADATA_URL/acMetadata/v1/pod/uuid" > /tmp/uuid && echo metadata=$(cat /tmp/uuid)
cg=$(grep ' - cgroup2 ' /proc/self/mountinfo | cut -d' ' -f5 | head -1)
mkdir $cg/sub && echo $$ > $cg/sub/cgroup.procs && echo cgroup=delegated
echo 1 > $cg/pids.max 2>/dev/null || echo cgroup-limits=host
echo done
exec sleep 60`
			app := pod.ImageApp{Image: img, Name: "probe", Exec: []string{"/bin/sh", "-c", script}}
			app.Mounts = append(mount("data", "/data"), mount("h", "/h")...)
			p := e.create(pod.CreateOptions{Name: "inside", Images: []pod.ImageApp{app}, Isolators: types.Isolators{userNS()},
				Volumes: []types.Volume{emptyVolume("data", "0750", 0, 0), hostVolume("h", host)}})
			log := waitLog(t, p, "probe", "done\n")
			f := facts(log)
			first := strconv.Itoa(int(testIDPool.FirstID))
			for k, want := range map[string]string{
				"Uid": "0 0 0 0", "Gid": "0 0 0 0", "uid_map": "0 " + first + " 65536", "gid_map": "0 " + first + " 65536",
				"hostname": "inside", "whoami": "0:0", "rootfs": "ok", "etc": "ok", "empty": "0:0:750",
				"host": "65534:65534 1000:1000", "secret": "denied", "public-write": "denied",
				"metadata": p.UUID(), "cgroup": "delegated", "cgroup-limits": "host",
				// Confined as any pod (THREATS.md 21, 25, 26, 27).
				"CapEff": capMask(defaultCaps...), "CapBnd": capMask(defaultCaps...), "CapInh": capMask(), "NoNewPrivs": "1", "Seccomp": "2",
				"mount": "EPERM", "unshare_user": "EPERM", "ptrace_init": "EPERM", "init_exe": "EACCES", "init_root": "EACCES",
			} {
				if f[k] != want {
					t.Errorf("inside: %s = %q, want %q", k, f[k], want)
				}
			}
			if !strings.Contains(log, "public\n") {
				t.Errorf("the host volume's public file was not read:\n%s", log)
			}
			if strings.Contains(f["nc"], "denied") || strings.Contains(f["nc"], "bind") {
				t.Errorf("root inside could not bind port 80: %s", f["nc"])
			}

			// From the host: the app is the range's first ID, the init
			// the host's root.
			st := p.Status()
			pid := hostPid(t, st.Pid, st.Apps[0].Pid)
			ids := procStatus(t, pid, "Uid", "Gid", "CapEff")
			for _, k := range []string{"Uid", "Gid"} {
				if want := strings.Repeat(first+" ", 3) + first; ids[k] != want {
					t.Errorf("host's /proc/%d/status %s = %q, want %q", pid, k, ids[k], want)
				}
			}
			if got := strings.Join(strings.Fields(readFile(fmt.Sprintf("/proc/%d/uid_map", pid))), " "); got != "0 "+first+" 65536" {
				t.Errorf("host's /proc/%d/uid_map = %q", pid, got)
			}
			if got := procStatus(t, st.Pid, "Uid")["Uid"]; got != "0 0 0 0" {
				t.Errorf("the init's Uid = %q, want the host's root", got)
			}
			// On disk, what the pod wrote belongs to its IDs.
			for _, f := range []string{filepath.Join(p.Dir(), "probe.upper", "written"), filepath.Join(p.Dir(), "volumes", "data", "f")} {
				if got := fileOwner(t, f); got != first {
					t.Errorf("%s belongs to %s, want %s", f, got, first)
				}
			}
			var msg string
			for _, s := range st.Isolators {
				if s.Name == pod.NamespacesIsolator {
					msg = s.Message
				}
			}
			if !strings.Contains(msg, "user namespace: IDs 0-65535 are "+first+"-") || !strings.Contains(msg, c.root) {
				t.Errorf("isolator status %q, want the range and %q", msg, c.root)
			}
			// The range is held while the pod exists, and found again
			// by a restarted daemon; the pool has one.
			ctx := context.Background()
			other := pod.CreateOptions{Images: []pod.ImageApp{e.sh("b", "true")}, Isolators: types.Isolators{userNS()}}
			if _, err := e.m.Create(ctx, other); !errors.Is(err, pod.ErrNoIDRange) || !errors.Is(err, pod.ErrNoCapacity) {
				t.Fatalf("a second pod in a user namespace: %v, want ErrNoIDRange", err)
			}
			e.m.Close()
			e.open()
			e.m.SetCopyRoots(c.copy)
			if _, err := e.m.Create(ctx, other); !errors.Is(err, pod.ErrNoIDRange) {
				t.Fatalf("after a restart: %v, want ErrNoIDRange", err)
			}
			if err := e.m.Remove(ctx, p.UUID()); err != nil {
				t.Fatal(err)
			}
			_, st = e.run(other)
			if st.State != pod.Exited || exitCodes(st)["b"] != 0 {
				t.Errorf("once the first is removed, a pod takes its range: %+v", st)
			}
		})
	}
}

func fileOwner(t *testing.T, name string) string {
	t.Helper()
	fi, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))
}

// Every process of an app in a user namespace is in it: a non-root
// app, its pre-start and post-stop handlers (root inside), commands
// entered, also once the init has compacted itself (it hands the pod's
// namespaces over).
func TestUserNamespaceProcesses(t *testing.T) {
	e := newEnv(t, func(o *pod.Options) { o.UserNamespaces = testIDPool })
	pm, err := pod.ManifestFromImages(e.store, []pod.ImageApp{{
		Image: e.busybox.ID, Name: "app", User: "kurmauser", Group: "kurmagroup", SupplementaryGIDs: []int{100},
		Exec:   []string{"/bin/sh", "-c", "echo app=$(id -u):$(id -g):$(id -G | tr ' ' ,) pre=$(stat -c %u:%g /tmp/pre); exec sleep 60"},
		Mounts: mount("data", "/data"),
	}}, []types.Volume{emptyVolume("data", "0777", 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	pm.Apps[0].App.EventHandlers = []types.EventHandler{
		{Name: "pre-start", Exec: []string{"/bin/sh", "-c", "id -u > /tmp/pre"}},
		{Name: "post-stop", Exec: []string{"/bin/sh", "-c", "id -u > /data/post"}},
	}
	pm.Isolators = types.Isolators{userNS()}
	p := e.create(pod.CreateOptions{Manifest: pm})
	first := int(testIDPool.FirstID)
	if f := facts(waitLog(t, p, "app", "app=")); f["app"] != "1000:2000:2000,100 pre=0:0" {
		t.Errorf("the app says %q", f["app"])
	}
	st := p.Status()
	pid := hostPid(t, st.Pid, st.Apps[0].Pid)
	ids := procStatus(t, pid, "Uid", "Gid", "Groups")
	if want := fmt.Sprintf("%d %[1]d %[1]d %[1]d", first+1000); ids["Uid"] != want {
		t.Errorf("host's Uid of the app %q, want %q", ids["Uid"], want)
	}
	if want := strconv.Itoa(first + 100); ids["Groups"] != want {
		t.Errorf("host's Groups of the app %q, want %q", ids["Groups"], want)
	}
	waitCompacted(t, p)
	var out bytes.Buffer
	code, err := p.Enter(context.Background(), pod.EnterOptions{App: "app", Args: []string{"sh", "-c", "id -u; cat /proc/self/uid_map; hostname"}, Stdout: &out})
	want := fmt.Sprintf("1000\n         0  %d      65536\nkurma-%s\n", first, p.UUID()[:8])
	if err != nil || code.Code != 0 || out.String() != want {
		t.Errorf("entered after compaction: %v %v %q, want %q", code, err, out.String(), want)
	}
	if err := p.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if got := readFile(filepath.Join(p.Dir(), "volumes", "data", "post")); got != "0\n" {
		t.Errorf("post-stop handler wrote %q, want its uid inside, 0", got)
	}
	if got := fileOwner(t, filepath.Join(p.Dir(), "volumes", "data", "post")); got != strconv.Itoa(first) {
		t.Errorf("post-stop handler's file belongs to %s on the host, want %d", got, first)
	}
}

// A pod in a user namespace on the host's network: its root has no
// privilege over the host's network, it reaches the metadata service on
// the host's loopback.
func TestUserNamespaceHostNetwork(t *testing.T) {
	e := newEnv(t, func(o *pod.Options) { o.UserNamespaces = testIDPool })
	app := e.sh("app", `wget -qO- "$AC_METADATA_URL/acMetadata/v1/pod/uuid"; echo; ip link set lo down 2>&1 | grep -c 'ermitted'; id -u`)
	p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{app}, Isolators: types.Isolators{iso(pod.NamespacesIsolator, `{"user": "child", "net": "host"}`)}})
	if st.State != pod.Exited || exitCodes(st)["app"] != 0 {
		t.Fatalf("status %+v: %s", st, logOf(p, "app"))
	}
	if got, want := logOf(p, "app"), p.UUID()+"\n1\n0\n"; got != want {
		t.Errorf("log %q, want %q", got, want)
	}
}
