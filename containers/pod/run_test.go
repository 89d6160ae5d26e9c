package pod_test

import (
	"strings"
	"testing"

	"github.com/kurmaos/kurma/containers/pod"
)

func TestExitCodes(t *testing.T) {
	e := newEnv(t)
	t.Run("single", func(t *testing.T) {
		p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{e.sh("a", "exit 7")}})
		if st.State != pod.Exited || exitCodes(st)["a"] != 7 {
			t.Fatalf("status %+v, want exited with a=7; log: %s", st, logOf(p, "a"))
		}
	})
	t.Run("multi", func(t *testing.T) {
		_, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{e.sh("a", "exit 0"), e.sh("b", "sleep 0.2; exit 3"), e.sh("c", "kill -9 $$")}})
		got := exitCodes(st)
		if st.State != pod.Exited || got["a"] != 0 || got["b"] != 3 || got["c"] != 128+9 {
			t.Fatalf("status %+v, codes %v; want exited with a=0 b=3 c=137", st, got)
		}
		for _, a := range st.Apps {
			if a.Name == "c" && a.Exit.Signal != "killed" {
				t.Errorf("app c: signal %q, want killed", a.Exit.Signal)
			}
		}
	})
	t.Run("image app", func(t *testing.T) {
		_, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{{Image: "example.com/busybox"}}})
		if st.State != pod.Exited || exitCodes(st)["busybox"] != 0 {
			t.Fatalf("status %+v, want /bin/true of the image to exit 0", st)
		}
	})
}

func TestEnvironment(t *testing.T) {
	e := newEnv(t)
	app := e.sh("envapp", "env")
	app.Env.Set("FOO", "bar baz")
	app.Env.Set("AC_APP_NAME", "spoofed")
	p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{app}})
	if st.State != pod.Exited {
		t.Fatalf("status %+v", st)
	}
	got := map[string]string{}
	for _, l := range strings.Split(logOf(p, "envapp"), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			got[k] = v
		}
	}
	for k, v := range map[string]string{
		"PATH":        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"AC_APP_NAME": "envapp",
		"container":   "kurma",
		"FOO":         "bar baz",
	} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if u := got["AC_METADATA_URL"]; !strings.HasPrefix(u, "http://127.0.0.1:18112/") || len(u) < len("http://127.0.0.1:18112/")+32 {
		t.Errorf("AC_METADATA_URL=%q, want http://127.0.0.1:18112/TOKEN", u)
	}
}
