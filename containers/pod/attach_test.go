package pod_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/pod"
	"github.com/kurmaos/kurma/internal/syncbuf"
)

// An interactive app runs on a terminal: the first client to attach
// sees what it wrote before, writes its input and gets its exit status;
// the output is in the log as well.
func TestAttach(t *testing.T) {
	e := newEnv(t)
	app := e.sh("app", "echo early; test -t 0 && echo is-a-tty; read x; echo got-$x; exit 5")
	app.Interactive = true
	p := e.create(pod.CreateOptions{Images: []pod.ImageApp{app}})
	time.Sleep(300 * time.Millisecond) // the app has written "early" by now, to no one
	var out bytes.Buffer
	st, err := p.Attach(context.Background(), pod.AttachOptions{Stdin: strings.NewReader("hello\n"), Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 5 {
		t.Errorf("exit %+v, want 5", st)
	}
	// No echo and no \r\n without a TTY on the client's side.
	if want := "early\nis-a-tty\ngot-hello\n"; out.String() != want {
		t.Errorf("attached output %q, want %q", out.String(), want)
	}
	wait(t, p)
	if log := logOf(p, "app"); !strings.Contains(log, "early") || !strings.Contains(log, "got-hello") {
		t.Errorf("the log lacks the terminal's output: %q", log)
	}
}

// A client with a terminal sizes the app's; a second client is refused
// while one is attached; a client that detaches leaves the app running
// and a later one gets the rest; an app that is not interactive cannot
// be attached to.
func TestAttachTTYAndDetach(t *testing.T) {
	e := newEnv(t)
	app := e.sh("app", "while read x; do echo got-$x; [ $x = size ] && stty size; done; exit 7")
	app.Interactive, app.TTY = true, true
	p := e.create(pod.CreateOptions{Images: []pod.ImageApp{app, e.sh("plain", "exec sleep 100")}})
	ctx, detach := context.WithCancel(context.Background())
	inR, inW := io.Pipe()
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		_, err := p.Attach(ctx, pod.AttachOptions{App: "app", TTY: true, Rows: 33, Cols: 111, Stdin: inR, Stdout: out})
		done <- err
	}()
	if _, err := io.WriteString(inW, "one\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(out.String(), "got-one") })
	if _, err := p.Attach(context.Background(), pod.AttachOptions{App: "app"}); err == nil || !strings.Contains(err.Error(), "attached already") {
		t.Errorf("a second client: %v, want it refused", err)
	}
	if _, err := p.Attach(context.Background(), pod.AttachOptions{App: "plain"}); err == nil || !strings.Contains(err.Error(), "not interactive") {
		t.Errorf("attach to an app that is not interactive: %v", err)
	}
	detach()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("detach: %v", err)
	}
	inW.Close()
	// The first client's output: its input echoed by the terminal and
	// the answer, with \r\n (and the app's stty size, before or after).
	if o := out.String(); strings.Count(o, "one\r\n") != 2 || !strings.Contains(o, "got-one\r\n") {
		t.Errorf("a TTY client's output %q: want the echo and \\r\\n", out.String())
	}
	var out2 bytes.Buffer
	st, err := p.Attach(context.Background(), pod.AttachOptions{App: "app", TTY: true, Stdin: strings.NewReader("size\n\x04"), Stdout: &out2})
	if err != nil {
		t.Fatal(err)
	}
	// The size the first client set stays.
	if st.Code != 7 || !strings.Contains(out2.String(), "got-size\r\n33 111\r\n") || strings.Contains(out2.String(), "got-one") {
		t.Errorf("the second client: exit %+v, output %q", st, out2.String())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// The interactive annotation takes tty, true or false: anything else is
// refused before anything is made.
func TestInteractiveAnnotationChecked(t *testing.T) {
	e := newEnv(t)
	pm, err := pod.ManifestFromImages(e.store, []pod.ImageApp{e.sh("app", "true")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pm.Apps[0].Annotations.Set(pod.InteractiveAnnotation, "yes")
	_, err = e.m.Create(context.Background(), pod.CreateOptions{Manifest: pm})
	if !errors.Is(err, pod.ErrInvalid) || !strings.Contains(err.Error(), pod.InteractiveAnnotation) {
		t.Errorf("annotation yes: %v, want it refused", err)
	}
	if n := len(e.m.List()); n != 0 {
		t.Errorf("%d pods after a refused create", n)
	}
}
