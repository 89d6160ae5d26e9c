package pod_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/pod"
)

func TestEnter(t *testing.T) {
	e := newEnv(t)
	app := e.sh("app", "echo inside > /tmp/marker; exec sleep 100")
	app.User, app.Group = "kurmauser", "kurmagroup"
	app.WorkingDirectory = "/home/user"
	p := e.create(pod.CreateOptions{Images: []pod.ImageApp{app, e.sh("other", "exec sleep 100")}})
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := p.Enter(ctx, pod.EnterOptions{App: "app", Args: []string{"test", "-e", "/tmp/marker"}}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}

	t.Run("without a TTY", func(t *testing.T) {
		var out, errOut bytes.Buffer
		st, err := p.Enter(ctx, pod.EnterOptions{
			App: "app", Args: []string{"sh", "-c", "cat /tmp/marker; echo $(id -u) $(pwd) $AC_APP_NAME $EXTRA; read line; echo got $line; echo oops >&2; exit 3"},
			Env: []string{"EXTRA=x"}, Stdin: strings.NewReader("hello\n"), Stdout: &out, Stderr: &errOut,
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.Code != 3 {
			t.Errorf("exit %+v, want 3", st)
		}
		if want := "inside\n1000 /home/user app x\ngot hello\n"; out.String() != want {
			t.Errorf("stdout %q, want %q", out.String(), want)
		}
		if errOut.String() != "oops\n" {
			t.Errorf("stderr %q", errOut.String())
		}
	})

	t.Run("with a TTY", func(t *testing.T) {
		r, w := io.Pipe()
		var out bytes.Buffer
		done := make(chan struct{})
		var st = struct {
			code int
			err  error
		}{}
		go func() {
			defer close(done)
			s, err := p.Enter(ctx, pod.EnterOptions{App: "app", Args: []string{"sh", "-c", "tty; test -t 0 && echo is-a-tty; stty size; read x; echo got-$x; exit 4"}, TTY: true, Rows: 30, Cols: 100, Stdin: r, Stdout: &out})
			st.code, st.err = s.Code, err
		}()
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "typed\n")
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("enter with a TTY did not return")
		}
		w.Close()
		if st.err != nil || st.code != 4 {
			t.Fatalf("enter: %d %v", st.code, st.err)
		}
		got := strings.ReplaceAll(out.String(), "\r", "")
		for _, want := range []string{"/dev/pts/", "is-a-tty", "30 100", "got-typed"} {
			if !strings.Contains(got, want) {
				t.Errorf("output %q lacks %q", got, want)
			}
		}
	})

	t.Run("same cgroup, apps apart", func(t *testing.T) {
		var out bytes.Buffer
		if _, err := p.Enter(ctx, pod.EnterOptions{App: "other", Args: []string{"sh", "-c", "cat /proc/self/cgroup; test -e /tmp/marker && echo shared-root"}, Stdout: &out}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "shared-root") {
			t.Error("app other sees app's /tmp: apps must have their own roots")
		}
		if !strings.Contains(out.String(), p.UUID()) {
			t.Errorf("entered process's cgroups %q do not name the pod", out.String())
		}
	})

	t.Run("errors", func(t *testing.T) {
		if _, err := p.Enter(ctx, pod.EnterOptions{App: "nope", Args: []string{"true"}}); err == nil {
			t.Error("enter into a missing app succeeded")
		}
		if _, err := p.Enter(ctx, pod.EnterOptions{App: "app", Args: []string{"/no/such/binary"}}); err == nil {
			t.Error("enter with a missing binary succeeded")
		}
	})

	// The pod has no extra processes once entered commands are done.
	if err := p.Stop(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Enter(ctx, pod.EnterOptions{App: "app", Args: []string{"true"}}); err == nil {
		t.Error("enter into a stopped pod succeeded")
	}
	_ = os.Stdout
}
