package pod_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/pod"
)

func boolp(b bool) *bool { return &b }

func emptyVolume(name, mode string, uid, gid int) types.Volume {
	return types.Volume{Name: types.ACName(name), Kind: "empty", Mode: &mode, UID: &uid, GID: &gid}
}

func hostVolume(name, source string) types.Volume {
	return types.Volume{Name: types.ACName(name), Kind: "host", Source: source}
}

func mount(volume, path string) []schema.Mount {
	return []schema.Mount{{Volume: types.ACName(volume), Path: path}}
}

func TestEmptyVolumeShared(t *testing.T) {
	e := newEnv(t)
	a := e.sh("a", "stat -c '%a %u %g' /data; echo from-a > /data/x")
	a.Mounts = mount("data", "/data")
	b := e.sh("b", "while [ ! -s /data/here/deep/x ]; do sleep 0.02; done; cat /data/here/deep/x")
	b.Mounts = mount("data", "/data/here/deep") // a target missing in the image
	p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{a, b}, Volumes: []types.Volume{emptyVolume("data", "0750", 1000, 2000)}})
	if st.State != pod.Exited {
		t.Fatalf("status %+v", st)
	}
	if got := strings.TrimSpace(logOf(p, "a")); got != "750 1000 2000" {
		t.Errorf("empty volume mode/uid/gid %q, want 750 1000 2000", got)
	}
	if got := strings.TrimSpace(logOf(p, "b")); got != "from-a" {
		t.Errorf("app b read %q from the shared volume, want from-a", got)
	}
	// One backing directory, in the pod's directory.
	if data, err := os.ReadFile(filepath.Join(p.Dir(), "volumes", "data", "x")); err != nil || string(data) != "from-a\n" {
		t.Errorf("backing directory: %q %v", data, err)
	}
}

func TestHostVolume(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "inner"), []byte("submount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "cat /h/hello; cat /h/sub/inner 2>/dev/null || echo no-submount; echo written > /h/out"
	for _, c := range []struct {
		name      string
		recursive *bool
		want      string
	}{
		{"recursive by default", nil, "host file\nsubmount\n"},
		{"not recursive", boolp(false), "host file\nno-submount\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := e.sh("app", script)
			app.Mounts = mount("h", "/h")
			v := hostVolume("h", src)
			v.Recursive = c.recursive
			p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{app}, Volumes: []types.Volume{v}})
			if got := logOf(p, "app"); st.State != pod.Exited || got != c.want {
				t.Fatalf("log %q (%s), want %q", got, st.State, c.want)
			}
			if data, _ := os.ReadFile(filepath.Join(src, "out")); string(data) != "written\n" {
				t.Errorf("the app's write did not reach the host directory: %q", data)
			}
		})
	}
	t.Run("file", func(t *testing.T) {
		app := e.sh("app", "cat /etc/hostfile")
		app.Mounts = mount("f", "/etc/hostfile")
		p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{app}, Volumes: []types.Volume{hostVolume("f", filepath.Join(src, "hello"))}})
		if got := logOf(p, "app"); st.State != pod.Exited || got != "host file\n" {
			t.Fatalf("single-file volume: %q (%s)", got, st.State)
		}
	})
}

// A mount point of the image, read-only or not, and the volume's own
// readOnly: the pod's volume wins when it says something (pods.md).
func TestReadOnlyPrecedence(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name       string
		mountPoint bool
		volume     *bool
		want       string
	}{
		{"mount point rw, volume unset", false, nil, "rw"},
		{"mount point ro, volume unset", true, nil, "ro"},
		{"mount point rw, volume ro", false, boolp(true), "ro"},
		{"mount point ro, volume rw", true, boolp(false), "rw"},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := map[string]any{
				"exec": []string{"/bin/sh", "-c", "touch /data/f 2>/dev/null && echo rw || echo ro"}, "user": "0", "group": "0",
				"mountPoints": []map[string]any{{"name": "data", "path": "/data", "readOnly": c.mountPoint}},
			}
			img := e.importImage(busyboxImage(t, "example.com/ro-"+strings.NewReplacer(" ", "-", ",", "").Replace(c.name), app))
			v := emptyVolume("data", "0755", 0, 0)
			v.ReadOnly = c.volume
			p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{{Image: img.ID, Name: "app"}}, Volumes: []types.Volume{v}})
			if got := strings.TrimSpace(logOf(p, "app")); st.State != pod.Exited || got != c.want {
				t.Fatalf("got %q (%s), want %q", got, st.State, c.want)
			}
		})
	}
}

// podsLeft lists what is in the pods directories besides the metadata
// key and the spare inits.
func podsLeft(t *testing.T, e *env) []string {
	t.Helper()
	var left []string
	for _, d := range []string{e.opts.Dir, e.opts.RunDir} {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range ents {
			if _, err := os.Stat(filepath.Join(d, en.Name(), "pod.json")); d == e.opts.RunDir && err != nil {
				continue // a spare init's (see spare_linux.go)
			}
			if en.Name() != "metadata.key" && en.Name() != ".spares" {
				left = append(left, filepath.Join(d, en.Name()))
			}
		}
	}
	return left
}

func TestInvalidPodsLeaveNothing(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "real", "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	withMount := func(v types.Volume, path string) pod.CreateOptions {
		app := e.sh("app", "true")
		app.Mounts = mount(string(v.Name), path)
		return pod.CreateOptions{Images: []pod.ImageApp{app}, Volumes: []types.Volume{v}}
	}
	mp := map[string]any{"exec": []string{"/bin/true"}, "user": "0", "group": "0", "mountPoints": []map[string]any{{"name": "needed", "path": "/needed"}}}
	needs := e.importImage(busyboxImage(t, "example.com/needs-volume", mp))
	for _, c := range []struct {
		name string
		opts pod.CreateOptions
	}{
		{"missing host source", withMount(hostVolume("h", filepath.Join(dir, "missing")), "/h")},
		{"symlinked host source", withMount(hostVolume("h", filepath.Join(dir, "link")), "/h")},
		{"symlink inside host source", withMount(hostVolume("h", filepath.Join(dir, "link", "in")), "/h")},
		{"relative host source", withMount(hostVolume("h", "tmp"), "/h")},
		{"mount under /proc", withMount(emptyVolume("v", "0755", 0, 0), "/proc/x")},
		{"no such volume", func() pod.CreateOptions {
			app := e.sh("app", "true")
			app.Mounts = mount("nope", "/x")
			return pod.CreateOptions{Images: []pod.ImageApp{app}}
		}()},
		{"unsatisfied mount point", pod.CreateOptions{Manifest: &schema.PodManifest{
			ACKind: schema.PodManifestKind, ACVersion: schema.AppContainerVersion,
			Apps: schema.AppList{{Name: "app", Image: schema.RuntimeImage{ID: hash(t, needs.ID)}}},
		}}},
		{"missing image", pod.CreateOptions{Images: []pod.ImageApp{{Image: "example.com/nope"}}}},
		{"no apps", pod.CreateOptions{Manifest: &schema.PodManifest{ACKind: schema.PodManifestKind, ACVersion: schema.AppContainerVersion}}},
		{"duplicate app names", pod.CreateOptions{Images: []pod.ImageApp{e.sh("x", "true"), e.sh("x", "true")}}},
		{"bad name", pod.CreateOptions{Name: "Bad_Name", Images: []pod.ImageApp{e.sh("x", "true")}}},
		{"bad mode", withMount(emptyVolume("v", "9999", 0, 0), "/v")},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := e.m.Create(context.Background(), c.opts)
			if !errors.Is(err, pod.ErrInvalid) || p != nil {
				t.Fatalf("create: %v (pod %v), want ErrInvalid and no pod", err, p)
			}
			if left := podsLeft(t, e); len(left) > 0 {
				t.Fatalf("left in the pods directory: %v", left)
			}
			if len(e.m.List()) != 0 {
				t.Fatal("the manager lists a pod")
			}
		})
	}
	t.Logf("example error: %v", func() error {
		_, err := e.m.Create(context.Background(), withMount(hostVolume("h", filepath.Join(dir, "link")), "/h"))
		return err
	}())
}

func hash(t *testing.T, id string) types.Hash {
	h, err := types.NewHash(id)
	if err != nil {
		t.Fatal(err)
	}
	return *h
}

// Mount targets are created inside the app's root, through the image's
// symlinks as the app would see them, never outside (THREATS.md 17).
func TestMountTargetsStayInRoot(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	// The image has the directories of outside's path, so that its
	// symlinks resolve inside the root.
	var dirs []acitest.Entry
	for d := outside; d != "/"; d = filepath.Dir(d) {
		dirs = append([]acitest.Entry{acitest.Dir("rootfs" + d)}, dirs...)
	}
	img := e.importImage(busyboxImage(t, "example.com/escape", nil, append(dirs,
		acitest.Symlink("rootfs/escape", "../../../../../../../.."+outside),
		acitest.Symlink("rootfs/abs", outside),
		acitest.Symlink("rootfs/dangling", "/no/such/dir"),
		acitest.File("rootfs/opt/afile", "x"),
	)...))
	vols := []types.Volume{emptyVolume("a", "0755", 0, 0), emptyVolume("b", "0755", 0, 0), emptyVolume("c", "0755", 0, 0)}
	app := pod.ImageApp{Image: img.ID, Name: "app", Exec: []string{"/bin/sh", "-c", "ls -d " + outside + "/made/deep " + outside + "/x && stat -c %F /opt/afile"}}
	app.Mounts = []schema.Mount{{Volume: "a", Path: "/escape/made/deep"}, {Volume: "b", Path: "/abs/x"}, {Volume: "c", Path: "/opt/afile"}}
	p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{app}, Volumes: vols})
	if st.State != pod.Exited || exitCodes(st)["app"] != 0 {
		t.Fatalf("status %+v, log %s", st, logOf(p, "app"))
	}
	if !strings.Contains(logOf(p, "app"), "directory") {
		t.Errorf("the file /opt/afile was not replaced by a directory: %s", logOf(p, "app"))
	}
	// A symlink to nowhere is an error, not a way out.
	app.Mounts = []schema.Mount{{Volume: "a", Path: "/dangling/x"}}
	if _, err := e.m.Create(context.Background(), pod.CreateOptions{Images: []pod.ImageApp{app}, Volumes: vols[:1]}); !errors.Is(err, pod.ErrFailed) {
		t.Errorf("mount through a dangling symlink: %v, want ErrFailed", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("created outside the root: %v", ents)
	}
	if _, err := os.Stat("/no/such/dir"); err == nil {
		t.Error("created /no/such/dir on the host")
	}
}
