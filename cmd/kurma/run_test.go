package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args    []string
		wantErr bool
	}{
		{nil, true},
		{[]string{"help"}, false},
		{[]string{"frobnicate"}, true},
		{[]string{"daemon", "--no-such-flag"}, true},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), strings.NewReader(""), &out, &errOut, c.args)
		if (err != nil) != c.wantErr {
			t.Errorf("run %q: %v, want error %v", c.args, err, c.wantErr)
		}
		if !strings.Contains(out.String()+errOut.String(), "usage") && len(c.args) > 0 && c.args[0] != "daemon" {
			t.Errorf("run %q printed no usage", c.args)
		}
	}
}

// TestDaemon runs the daemon in-process on temporary directories until
// its context ends: it opens the store and the pod manager and reports
// ready.
func TestDaemon(t *testing.T) {
	if os.Geteuid() != 0 || os.Getenv("KURMA_TEST_PRIVILEGED") != "1" {
		t.Skip("needs root and KURMA_TEST_PRIVILEGED=1 (cgroups)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, nil, &out, &errOut, []string{"daemon", "--state-dir", dir, "--run-dir", filepath.Join(dir, "run"), "--spares", "0"})
	if err != nil {
		t.Fatalf("daemon: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "daemon ready") {
		t.Errorf("output %q", out.String())
	}
	for _, d := range []string{"images", "pods", "run/pods"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want a directory of mode 0700", d, st, err)
		}
	}
}
