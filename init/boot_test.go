package boot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAction(t *testing.T) {
	for _, s := range []string{"poweroff", "reboot", "halt"} {
		if a, err := ParseAction(s); err != nil || string(a) != s {
			t.Errorf("ParseAction(%s) = %v, %v", s, a, err)
		}
	}
	if _, err := ParseAction("explode"); err == nil || !strings.Contains(err.Error(), "poweroff, reboot, halt") {
		t.Errorf("ParseAction(explode): %v", err)
	}
}

func testLogger(t *testing.T, consoleLevel string) (*Logger, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var console, kmsg bytes.Buffer
	l := NewLogger(&console)
	l.stampLog = false
	l.printk = filepath.Join(t.TempDir(), "printk")
	if err := os.WriteFile(l.printk, []byte(consoleLevel+"\t4\t1\t7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.AttachKmsg(&kmsg)
	return l, &console, &kmsg
}

func TestLoggerKeepsConsoleOrderAndAvoidsKernelEcho(t *testing.T) {
	l, console, kmsg := testLogger(t, "4")
	l.Infof("one")
	l.Errorf("two %d", 2)
	l.Debugf("hidden")
	l.SetDebug(true)
	l.Debugf("shown")
	if got, want := console.String(), "kurma: one\nkurma: error: two 2\nkurma-debug: shown\n"; got != want {
		t.Errorf("console = %q, want %q", got, want)
	}
	// The error would be echoed by the kernel at level 3 < 4: it goes to
	// the kernel log at level 4.
	if got, want := kmsg.String(), "<6>kurma: one\n<4>kurma: error: two 2\n<7>kurma-debug: shown\n"; got != want {
		t.Errorf("kmsg = %q, want %q", got, want)
	}
}

func TestLoggerBacklogReachesFile(t *testing.T) {
	l, _, _ := testLogger(t, "4")
	l.Infof("before")
	var file bytes.Buffer
	if err := l.AttachFile(&file); err != nil {
		t.Fatal(err)
	}
	l.Warnf("after")
	if got, want := file.String(), "kurma: before\nkurma: warning: after\n"; got != want {
		t.Errorf("boot log = %q, want %q", got, want)
	}
}

func TestRunPhases(t *testing.T) {
	var ran []string
	phase := func(name string, essential bool, err error) Phase {
		return Phase{Name: name, Essential: essential, Run: func(context.Context) error {
			ran = append(ran, name)
			return err
		}}
	}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name       string
		phases     []Phase
		fail       string
		wantRan    []string
		wantFailed string
		wantErr    error
	}{
		{"all pass", []Phase{phase("a", true, nil), phase("b", false, nil)}, "", []string{"a", "b"}, "", nil},
		{"optional failure goes on", []Phase{phase("a", false, boom), phase("b", true, nil)}, "", []string{"a", "b"}, "", nil},
		{"essential failure stops", []Phase{phase("a", true, boom), phase("b", true, nil)}, "", []string{"a"}, "a", boom},
		{"injected failure", []Phase{phase("a", true, nil), phase("b", true, nil), phase("c", true, nil)}, "b", []string{"a"}, "b", ErrInjected},
		{"panic is a failure", []Phase{{Name: "p", Essential: true, Run: func(context.Context) error { panic("oops") }}, phase("b", true, nil)}, "", nil, "p", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran = nil
			l, _, _ := testLogger(t, "4")
			var timeline []Step
			failed, err := runPhases(context.Background(), l, &timeline, tc.phases, func() string { return tc.fail })
			if !reflect.DeepEqual(ran, tc.wantRan) {
				t.Errorf("ran %v, want %v", ran, tc.wantRan)
			}
			gotFailed := ""
			if failed != nil {
				gotFailed = failed.Name
			}
			if gotFailed != tc.wantFailed {
				t.Errorf("failed phase %q, want %q", gotFailed, tc.wantFailed)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.name == "panic is a failure" && (err == nil || !strings.Contains(err.Error(), "panic: oops")) {
				t.Errorf("err = %v, want the panic", err)
			}
			if len(timeline) != len(tc.wantRan)+boolInt(tc.wantFailed != "" && !contains(tc.wantRan, tc.wantFailed)) {
				t.Errorf("timeline %+v", timeline)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestFormatTimeline(t *testing.T) {
	got := formatTimeline([]Step{
		{Name: "early", Took: 12 * time.Millisecond},
		{Name: "switch-root", Took: 1500 * time.Microsecond, Err: "x"},
	}, 4321*time.Millisecond)
	want := []string{
		"boot timeline:",
		"  early          12 ms",
		"  switch-root     1 ms  FAILED",
		"  total        4321 ms since kernel start",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{`/mnt/a\040b`: "/mnt/a b", "/plain": "/plain", `/x\134y`: `/x\y`} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeepMounted(t *testing.T) {
	for target, want := range map[string]bool{
		"/": true, "/proc": true, "/sys/fs/cgroup": true, "/dev/pts": true, "/run/kurma": true,
		"/var/lib/kurma": false, "/mnt/data": false, "/devices": false,
	} {
		if got := keepMounted(target); got != want {
			t.Errorf("keepMounted(%s) = %v, want %v", target, got, want)
		}
	}
}

func TestReadRelease(t *testing.T) {
	p := filepath.Join(t.TempDir(), "release")
	os.WriteFile(p, []byte("# comment\nKURMA_PROFILE=qemu\nKURMA_VERSION=\"1.2\"\n\n"), 0o644)
	got := readRelease(p)
	want := map[string]string{"KURMA_PROFILE": "qemu", "KURMA_VERSION": "1.2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readRelease = %v, want %v", got, want)
	}
}
