package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/creack/pty"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/internal/syncbuf"
)

func privileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv("KURMA_TEST_PRIVILEGED") != "1" {
		t.Skip("needs root and KURMA_TEST_PRIVILEGED=1 (namespaces, cgroups): make test-privileged")
	}
}

// realDaemon runs `kurma daemon` in-process on temporary directories and
// socket; the stage binary is this test binary's sibling, the kurma
// command built for the test.
type realDaemon struct {
	dir, socket string
	errOut      *syncbuf.Buffer
}

func startRealDaemon(t *testing.T) *realDaemon {
	t.Helper()
	privileged(t)
	dir := t.TempDir()
	stage := buildKurma(t)
	d := &realDaemon{dir: dir, socket: filepath.Join(dir, "kurma.sock"), errOut: &syncbuf.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out syncbuf.Buffer
	go func() {
		done <- run(ctx, nil, &out, d.errOut, []string{"daemon", "--state-dir", filepath.Join(dir, "state"),
			"--run-dir", filepath.Join(dir, "run"), "--socket", d.socket, "--stage-binary", stage, "--spares", "0"})
	}()
	t.Cleanup(func() {
		// Remove what the test left, then stop the daemon.
		var o, e bytes.Buffer
		run(context.Background(), nil, &o, &e, []string{"-H", "unix://" + d.socket, "--json", "list"})
		var l struct {
			Pods []struct {
				UUID string `json:"uuid"`
			} `json:"pods"`
		}
		json.Unmarshal(o.Bytes(), &l)
		for _, p := range l.Pods {
			run(context.Background(), nil, &o, &e, []string{"-H", "unix://" + d.socket, "rm", "--force", p.UUID})
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v\n%s", err, d.errOut.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(d.errOut.String(), "daemon ready") {
		select {
		case err := <-done:
			t.Fatalf("daemon stopped: %v\n%s", err, d.errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready: %s", d.errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// buildKurma builds the kurma command, for the pods' inits.
func buildKurma(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "kurma")
	var stderr bytes.Buffer
	cmd := execCommand("go", "build", "-o", out, ".")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v\n%s", err, stderr.String())
	}
	return out
}

func (d *realDaemon) kurma(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return d.kurmaIn(t, "", args...)
}

// kurmaIn runs the CLI with stdin.
func (d *realDaemon) kurmaIn(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), strings.NewReader(stdin), &out, &errOut, append([]string{"-H", "unix://" + d.socket}, args...))
	return out.String(), errOut.String(), err
}

// onTerminal runs the CLI on a terminal of 33x111 (stdin, stdout and
// stderr), types input, and returns what the terminal showed and the
// CLI's error, once it has ended.
func (d *realDaemon) onTerminal(t *testing.T, input string, args ...string) (string, error) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	if err := pty.Setsize(slave, &pty.Winsize{Rows: 33, Cols: 111}); err != nil {
		t.Fatal(err)
	}
	var masterOut syncbuf.Buffer
	go io.Copy(&masterOut, master)
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), slave, slave, slave, append([]string{"-H", "unix://" + d.socket}, args...))
	}()
	io.WriteString(master, input)
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("kurma %s did not end: %q", strings.Join(args, " "), masterOut.String())
	}
	time.Sleep(100 * time.Millisecond) // the terminal's last output
	return masterOut.String(), err
}

func (d *realDaemon) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := d.kurma(t, args...)
	if err != nil {
		t.Fatalf("kurma %s: %v\n%s\ndaemon: %s", strings.Join(args, " "), err, errOut, d.errOut.String())
	}
	return out
}

func (d *realDaemon) importBusybox(t *testing.T) {
	t.Helper()
	data, err := acitest.Busybox("example.com/busybox", nil, "")
	if err != nil {
		t.Skipf("busybox-static is needed: %v", err)
	}
	p := filepath.Join(d.dir, "busybox.aci")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d.must(t, "image", "import", p)
}

type listed struct {
	Pods []struct {
		UUID  string `json:"uuid"`
		Name  string `json:"name"`
		State string `json:"state"`
		Apps  []struct {
			Name     string `json:"name"`
			State    string `json:"state"`
			ExitCode int    `json:"exit_code"`
		} `json:"apps"`
	} `json:"pods"`
}

// TestPodVerbs drives every pod verb of the CLI against a real daemon
// running real pods.
func TestPodVerbs(t *testing.T) {
	d := startRealDaemon(t)
	d.importBusybox(t)

	// run: a long-running pod by name, and one that exits 3 with --wait.
	uuid := strings.TrimSpace(d.must(t, "run", "--name", "web", "--env", "GREETING=hello", "example.com/busybox", "--",
		"/bin/sh", "-c", `echo "$GREETING from $AC_APP_NAME"; exec sleep 300`))
	if len(uuid) != 36 {
		t.Fatalf("run printed %q, want a UUID", uuid)
	}
	out, _, err := d.kurma(t, "run", "--wait", "example.com/busybox", "--", "/bin/sh", "-c", "echo bye; exit 3")
	var ex exitError
	if !asExit(err, &ex) || int(ex) != 3 || !strings.Contains(out, "bye") {
		t.Errorf("run --wait: %v %q, want exit status 3 and the output", err, out)
	}
	// A pod that fails (its app's working directory is missing) is an
	// error of run --wait that says why, not the exit status 0 its app
	// never had.
	_, _, err = d.kurma(t, "run", "--wait", "--name", "broken", "--workdir", "/nonexistent", "example.com/busybox", "--", "/bin/true")
	if err == nil || !strings.Contains(err.Error(), "failed") || !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("run --wait of a failing pod: %v, want the pod's failure", err)
	}
	d.must(t, "rm", "broken")
	// A pod whose init dies under its app (killed from the host) is a
	// failure too.
	done := make(chan error, 1)
	go func() {
		_, _, err := d.kurma(t, "run", "--wait", "--name", "orphaned", "example.com/busybox", "--", "/bin/sleep", "1234")
		done <- err
	}()
	killParentOf(t, "/bin/sleep\x001234\x00")
	if err := <-done; err == nil || !strings.Contains(err.Error(), "failed") || !strings.Contains(err.Error(), "init") {
		t.Errorf("run --wait of a pod whose init died: %v, want the pod's failure", err)
	}
	d.must(t, "rm", "orphaned")

	// list, sorted, and --json parsed back.
	var l listed
	if err := json.Unmarshal([]byte(d.must(t, "--json", "list", "--sort", "name")), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Pods) != 2 || l.Pods[1].Name != "web" || l.Pods[1].State != "POD_STATE_RUNNING" || l.Pods[0].Apps[0].ExitCode != 3 {
		t.Errorf("list: %+v", l)
	}
	table := d.must(t, "list")
	if !strings.Contains(table, "web") || !strings.Contains(table, "running") || !strings.Contains(table, "busybox:exited(3)") {
		t.Errorf("list table:\n%s", table)
	}

	// show by name, by full UUID and by a unique prefix.
	for _, ref := range []string{"web", uuid, uuid[:8]} {
		if out := d.must(t, "show", ref); !strings.Contains(out, uuid) || !regexp.MustCompile(`State:\s+running`).MatchString(out) {
			t.Errorf("show %s:\n%s", ref, out)
		}
	}
	if _, _, err := d.kurma(t, "show", "nosuchpod"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("show of a missing pod: %v", err)
	}

	// logs, waiting for the app's first line.
	var logs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if logs = d.must(t, "logs", "web"); strings.Contains(logs, "hello from busybox") {
			break
		}
	}
	if !strings.Contains(logs, "hello from busybox") {
		t.Errorf("logs: %q", logs)
	}

	// enter without a terminal: output and exit status come back.
	out, _, err = d.kurma(t, "enter", "web", "--", "/bin/sh", "-c", "echo inside $AC_APP_NAME; exit 5")
	if !asExit(err, &ex) || int(ex) != 5 || !strings.Contains(out, "inside busybox") {
		t.Errorf("enter: %v %q", err, out)
	}

	// stop, then rm; a running pod is not removed without --force.
	second := strings.TrimSpace(d.must(t, "run", "example.com/busybox", "--", "sleep", "300"))
	if _, _, err := d.kurma(t, "rm", second); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("rm of a running pod: %v", err)
	}
	d.must(t, "stop", "--grace", "1", "web")
	if out := d.must(t, "show", "web"); !strings.Contains(out, "stopped") {
		t.Errorf("after stop:\n%s", out)
	}
	d.must(t, "rm", "web")
	d.must(t, "rm", "--force", second)
	if _, _, err := d.kurma(t, "show", "web"); err == nil {
		t.Error("web is still there after rm")
	}
}

// TestAmbiguousPrefix creates pods until two UUIDs share their first
// digit (17 at most) and addresses them by it: the error lists both.
func TestAmbiguousPrefix(t *testing.T) {
	d := startRealDaemon(t)
	d.importBusybox(t)
	seen := map[byte]string{}
	for i := 0; i < 17; i++ {
		u := strings.TrimSpace(d.must(t, "run", "example.com/busybox"))
		if other, ok := seen[u[0]]; ok {
			_, _, err := d.kurma(t, "show", u[:1])
			if err == nil || !strings.Contains(err.Error(), "invalid_argument") || !strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), other) {
				t.Errorf("show %s: %v, want the candidates %s and %s", u[:1], err, u, other)
			}
			return
		}
		seen[u[0]] = u
	}
	t.Fatal("17 UUIDs with 16 different first digits")
}

// TestEnterWithTerminal runs the CLI with a terminal as its stdin and
// stdout: the command gets a terminal of the pod, sized like ours, and its
// exit status comes back.
func TestEnterWithTerminal(t *testing.T) {
	d := startRealDaemon(t)
	d.importBusybox(t)
	d.must(t, "run", "--name", "shell", "example.com/busybox", "--", "sleep", "300")
	out, err := d.onTerminal(t, "tty; stty size; exit 7\n", "enter", "shell")
	var ex exitError
	if !asExit(err, &ex) || int(ex) != 7 {
		t.Errorf("enter: %v, want exit status 7", err)
	}
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "33 111") {
		t.Errorf("the command saw no terminal of 33x111:\n%q", out)
	}
}

// TestReplaceAndWait creates a pod that exits, waits for it over the API,
// and replaces it by a new pod of the same name twice: the restarts
// count up and show in list and show; a running pod is not replaced.
func TestReplaceAndWait(t *testing.T) {
	d := startRealDaemon(t)
	d.importBusybox(t)
	c := &cli{host: "unix://" + d.socket}
	api, err := c.api()
	if err != nil {
		t.Fatal(err)
	}
	defer api.close()
	ctx := context.Background()
	create := func(script string, replace bool) (*kurmav1.Pod, error) {
		resp, err := api.pods.Create(ctx, connect.NewRequest(&kurmav1.CreatePodRequest{Name: "flaky", Replace: replace,
			Spec: &kurmav1.CreatePodRequest_Run{Run: &kurmav1.RunSpec{Apps: []*kurmav1.AppSpec{{Image: "example.com/busybox", Exec: []string{"/bin/sh", "-c", script}}}}}}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.Pod, nil
	}
	for i := 0; i < 3; i++ {
		p, err := create("exit 4", i > 0)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		w, err := api.pods.Wait(ctx, connect.NewRequest(&kurmav1.WaitPodRequest{Pod: p.Uuid}))
		if err != nil {
			t.Fatalf("wait %d: %v", i, err)
		}
		if got := w.Msg.Pod; got.State != kurmav1.PodState_POD_STATE_EXITED || got.Apps[0].ExitCode != 4 || got.Apps[0].Restarts != int32(i) {
			t.Errorf("wait %d: state %s, exit %d, restarts %d; want exited, 4, %d", i, got.State, got.Apps[0].ExitCode, got.Apps[0].Restarts, i)
		}
	}
	if _, err := create("exit 0", false); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("create of a second pod named flaky without replace: %v, want invalid_argument", err)
	}
	if out := d.must(t, "show", "flaky"); !regexp.MustCompile(`busybox\s+\S+\s+exited\s+4\s+2\s`).MatchString(out) {
		t.Errorf("show does not say 2 restarts:\n%s", out)
	}
	if _, err := create("exec sleep 300", true); err != nil {
		t.Fatal(err)
	}
	if out := d.must(t, "list"); !regexp.MustCompile(`flaky\s+running\s+busybox:\S+\s+3\s`).MatchString(out) {
		t.Errorf("list does not say 3 restarts:\n%s", out)
	}
	if _, err := create("exit 0", true); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("replace of a running pod: %v, want failed_precondition", err)
	}
}

// killParentOf waits for a process whose command line is cmdline and
// kills its parent with SIGKILL.
func killParentOf(t *testing.T, cmdline string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if data, err := os.ReadFile(p); err != nil || string(data) != cmdline {
				continue
			}
			status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(status), "\n") {
				if v, ok := strings.CutPrefix(l, "PPid:"); ok {
					ppid, _ := strconv.Atoi(strings.TrimSpace(v))
					if err := syscall.Kill(ppid, syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					return
				}
			}
		}
	}
	t.Fatalf("no process %q", cmdline)
}

// TestRunInteractive runs apps on a terminal with run --interactive:
// from a pipe (data as it is, the end of stdin the end of the app's
// input), an app that ends before run attaches (its output from the
// log), and from a terminal (echo, its size, the exit status), and
// attaches again to an app a client detached from.
func TestRunInteractive(t *testing.T) {
	d := startRealDaemon(t)
	d.importBusybox(t)
	out, _, err := d.kurmaIn(t, "abc\ndef\n", "run", "--interactive", "example.com/busybox", "--", "/bin/sh", "-c", "echo hi; read x; echo got-$x; cat; exit 4")
	var ex exitError
	if !asExit(err, &ex) || int(ex) != 4 || out != "hi\ngot-abc\ndef\n" {
		t.Errorf("run --interactive from a pipe: %v %q, want exit 4 and hi, got-abc, def", err, out)
	}
	out, _, err = d.kurmaIn(t, "", "run", "-i", "example.com/busybox", "--", "/bin/sh", "-c", "echo quick; exit 2")
	if !asExit(err, &ex) || int(ex) != 2 || !strings.Contains(out, "quick") {
		t.Errorf("run -i of an app that ends at once: %v %q", err, out)
	}
	if _, _, err := d.kurmaIn(t, "", "run", "--interactive", "--wait", "example.com/busybox"); err == nil {
		t.Error("run --interactive --wait was taken")
	}
	if _, _, err := d.kurmaIn(t, "", "attach", "web-none"); err == nil {
		t.Error("attach to no pod was taken")
	}

	out, err = d.onTerminal(t, "tty; stty size; echo $((6*7)); exit 3\n", "run", "-i", "--name", "tty", "example.com/busybox", "--", "/bin/sh")
	if !asExit(err, &ex) || int(ex) != 3 {
		t.Errorf("run -i on a terminal: %v, want exit status 3", err)
	}
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "33 111") || !strings.Contains(out, "42\r\n") {
		t.Errorf("the app saw no terminal of 33x111, or said nothing:\n%q", out)
	}

	// Detach (the client ends) and attach again.
	ctx, detach := context.WithCancel(context.Background())
	inR, inW := io.Pipe()
	var first syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, inR, &first, io.Discard, []string{"-H", "unix://" + d.socket, "run", "-i", "--name", "loop", "example.com/busybox", "--", "/bin/sh", "-c", "while read x; do echo got-$x; done; exit 6"})
	}()
	io.WriteString(inW, "one\n")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(first.String(), "got-one"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no answer: %q", first.String())
		}
	}
	detach()
	<-done
	out, _, err = d.kurmaIn(t, "two\n", "attach", "loop")
	if !asExit(err, &ex) || int(ex) != 6 || out != "got-two\n" {
		t.Errorf("attach after a detach: %v %q, want exit 6 and got-two alone", err, out)
	}
}
