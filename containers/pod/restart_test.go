package pod_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/containers/pod"
)

// The daemon-restart test runs a daemon in a child process (this test
// binary again, with helperEnv set), lets it create pods, SIGKILLs it,
// and takes the pods over with a new manager.
const helperEnv = "KURMA_TEST_HELPER_DAEMON"

// helperRequest is what the helper daemon is asked to create.
type helperRequest struct {
	StateDir string
	RunDir   string
	Stage    string
	ImageID  string
	Scripts  map[string]string // pod name -> script of its one app
}

func helperMain() int {
	var req helperRequest
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var m *pod.Manager
	store, err := image.Open(filepath.Join(req.StateDir, "images"), image.Options{
		InUse: func(ctx context.Context) ([]string, error) { return m.ImagesInUse(ctx) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	m, err = pod.Open(ctx, pod.Options{Dir: filepath.Join(req.StateDir, "pods"), RunDir: req.RunDir, Images: store, StageBinary: req.Stage})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for name, script := range req.Scripts {
		if _, err := m.Create(ctx, pod.CreateOptions{Name: name, Images: []pod.ImageApp{{Image: req.ImageID, Name: "app", Exec: []string{"/bin/sh", "-c", script}}}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("ready")
	select {} // until SIGKILLed
}

func TestDaemonRestart(t *testing.T) {
	e := newEnv(t)
	// The helper needs the store: close ours while it runs.
	e.m.Close()
	e.store.Close()
	req := helperRequest{
		StateDir: e.dir, RunDir: e.opts.RunDir, Stage: stageBinary(), ImageID: e.busybox.ID,
		Scripts: map[string]string{
			"runs-on":    "trap 'exit 0' TERM; while :; do sleep 0.05; done",
			"ends-now":   "exit 5",
			"ends-later": "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 6",
		},
	}
	data, _ := json.Marshal(req)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(data))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper daemon: %q %v", line, err)
	}
	time.Sleep(200 * time.Millisecond) // ends-now has ended
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// A new daemon: the store and the manager again.
	var err2 error
	e.store, err2 = image.Open(filepath.Join(e.dir, "images"), image.Options{
		InUse: func(ctx context.Context) ([]string, error) { return e.m.ImagesInUse(ctx) },
	})
	if err2 != nil {
		t.Fatal(err2)
	}
	e.opts.Images = e.store
	e.open()
	// The helper's spare init, cut off, was dropped; the new manager has
	// its own.
	waitSpares(t, e, 1)
	get := func(name string) *pod.Pod {
		p, err := e.m.Get(name)
		if err != nil {
			t.Fatalf("after restart: %v", err)
		}
		return p
	}
	if st := get("runs-on").Status(); st.State != pod.Running || st.Pid == 0 {
		t.Errorf("runs-on: %+v, want running", st)
	}
	if st := get("ends-now").Status(); st.State != pod.Exited || exitCodes(st)["app"] != 5 {
		t.Errorf("ends-now: %+v, want exited with 5", st)
	}
	// A pod that ends after the restart is seen ending.
	later := get("ends-later")
	if st := later.Status(); st.State != pod.Running {
		t.Fatalf("ends-later: %+v, want running", st)
	}
	if code, err := later.Enter(context.Background(), pod.EnterOptions{App: "app", Args: []string{"touch", "/tmp/go"}}); err != nil || code.Code != 0 {
		t.Fatalf("enter after restart: %v %v", code, err)
	}
	if st := wait(t, later); st.State != pod.Exited || exitCodes(st)["app"] != 6 {
		t.Errorf("ends-later: %+v, want exited with 6", st)
	}
	// The images of the pods are still in use for the new store.
	if err := e.store.Remove(context.Background(), e.busybox.ID); err == nil {
		t.Error("the busybox image could be removed while pods use it")
	}
	// And the running one stops through its init as usual.
	runs := get("runs-on")
	if err := runs.Stop(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := runs.Status(); st.State != pod.Stopped || exitCodes(st)["app"] != 0 {
		t.Errorf("runs-on after stop: %+v, want stopped, exit 0 (its TERM trap)", st)
	}
}
