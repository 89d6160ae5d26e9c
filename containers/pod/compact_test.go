package pod_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/pod"
)

// waitCompacted waits until the pod's init has replaced itself with a
// compact one (see package stage).
func waitCompacted(t *testing.T, p *pod.Pod) {
	t.Helper()
	pid := p.Status().Pid
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmd, []byte("\x00resume\x00")) {
			return
		}
	}
	t.Fatal("the pod's init did not compact itself")
}

func TestCompactedInit(t *testing.T) {
	e := newEnv(t)
	counter := e.sh("counter", "i=0; while [ ! -e /tmp/stop ]; do echo tick $i; i=$((i+1)); sleep 0.05; done; exit 3")
	sleeper := e.sh("sleeper", "exec sleep 100")
	p := e.create(pod.CreateOptions{Images: []pod.ImageApp{counter, sleeper}})
	pid := p.Status().Pid
	waitCompacted(t, p)
	if got := p.Status().Pid; got != pid {
		t.Fatalf("the init's PID changed from %d to %d", pid, got)
	}
	// Enter, the metadata service and the log all go on.
	var out bytes.Buffer
	st, err := p.Enter(context.Background(), pod.EnterOptions{App: "counter", Args: []string{"sh", "-c", "wget -q -O - $AC_METADATA_URL/acMetadata/v1/pod/uuid; touch /tmp/stop"}, Stdout: &out})
	if err != nil || st.Code != 0 || out.String() != p.UUID() {
		t.Fatalf("enter after compaction: %v %v %q", st, err, out.String())
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s := p.Status(); s.Apps[0].Exit != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("counter did not exit")
		}
	}
	// Every line of the counter is in its log, none lost in the handover.
	lines := strings.Split(strings.TrimSpace(logOf(p, "counter")), "\n")
	if len(lines) < 20 {
		t.Fatalf("log has %d lines, want more than a second's worth", len(lines))
	}
	for i, l := range lines {
		if l != fmt.Sprintf("tick %d", i) {
			t.Fatalf("log line %d is %q", i, l)
		}
	}
	if err := p.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	codes := exitCodes(p.Status())
	if p.Status().State != pod.Stopped || codes["counter"] != 3 || codes["sleeper"] != 128+15 {
		t.Errorf("status %+v codes %v, want stopped, counter 3, sleeper 143", p.Status(), codes)
	}
}
