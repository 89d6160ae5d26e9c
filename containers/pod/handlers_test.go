package pod_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/pod"
)

// handlerImage is an image whose app runs as kurmauser with pre-start and
// post-stop handlers; every step appends to /trace/log (a host volume).
func handlerImage(t *testing.T, e *env, name, preStart, main string) string {
	app := map[string]any{
		"exec": []string{"/bin/sh", "-c", main}, "user": "kurmauser", "group": "kurmagroup",
		"eventHandlers": []map[string]any{
			{"name": "pre-start", "exec": []string{"/bin/sh", "-c", preStart}},
			{"name": "post-stop", "exec": []string{"/bin/sh", "-c", "echo post-stop $(id -u) >> /trace/log"}},
		},
		"mountPoints": []map[string]any{{"name": "trace", "path": "/trace"}},
	}
	return e.importImage(busyboxImage(t, name, app)).ID
}

func TestEventHandlers(t *testing.T) {
	e := newEnv(t)
	trace := t.TempDir()
	if err := os.Chmod(trace, 0o777); err != nil {
		t.Fatal(err)
	}
	img := handlerImage(t, e, "example.com/handlers",
		"sleep 0.2; echo pre-start $(id -u) >> /trace/log; chmod 666 /trace/log; touch /opt/made-by-root",
		"echo app $(id -u) $(stat -c %u /opt/made-by-root) >> /trace/log")
	vols := []types.Volume{hostVolume("trace", trace)}
	p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{{Image: img, Name: "app"}}, Volumes: vols})
	if st.State != pod.Exited || exitCodes(st)["app"] != 0 {
		t.Fatalf("status %+v; log %s", st, logOf(p, "app"))
	}
	// pre-start ran to completion, as root, before the app (as 1000);
	// post-stop ran after it, as root.
	if got, want := readFile(filepath.Join(trace, "log")), "pre-start 0\napp 1000 0\npost-stop 0\n"; got != want {
		t.Errorf("trace:\n%s\nwant:\n%s", got, want)
	}

	t.Run("post-stop after stop", func(t *testing.T) {
		os.Remove(filepath.Join(trace, "log"))
		img := handlerImage(t, e, "example.com/handlers-stop", "true", "echo app >> /trace/log; exec sleep 100")
		p := e.create(pod.CreateOptions{Images: []pod.ImageApp{{Image: img, Name: "app"}}, Volumes: vols})
		for deadline := time.Now().Add(5 * time.Second); readFile(filepath.Join(trace, "log")) != "app\n"; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the app did not start")
			}
		}
		if err := p.Stop(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
		if got, want := readFile(filepath.Join(trace, "log")), "app\npost-stop 0\n"; got != want {
			t.Errorf("trace %q, want %q", got, want)
		}
	})

	t.Run("failing pre-start", func(t *testing.T) {
		os.Remove(filepath.Join(trace, "log"))
		img := handlerImage(t, e, "example.com/handlers-fail", "echo pre-start >> /trace/log; exit 3", "echo app >> /trace/log")
		p, err := e.m.Create(context.Background(), pod.CreateOptions{Images: []pod.ImageApp{{Image: img, Name: "app"}}, Volumes: vols})
		if !errors.Is(err, pod.ErrFailed) {
			t.Fatalf("create: %v, want ErrFailed", err)
		}
		st := p.Status()
		if st.State != pod.Failed || !strings.Contains(st.Error, "pre-start") || !strings.Contains(st.Error, "status 3") {
			t.Errorf("status %+v, want failed naming the pre-start handler and its status", st)
		}
		if got := readFile(filepath.Join(trace, "log")); got != "pre-start\n" {
			t.Errorf("trace %q: the app must not run after a failed pre-start", got)
		}
	})
}
