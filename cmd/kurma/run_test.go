package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args    []string
		wantErr string
		wantOut string
	}{
		{nil, "", "Usage:"},
		{[]string{"help"}, "", "Available Commands:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`, ""},
		{[]string{"daemon", "--no-such-flag"}, "unknown flag: --no-such-flag", ""},
		{[]string{"run"}, "no image given", ""},
		{[]string{"run", "a", "b", "--", "sh"}, "exactly one image", ""},
		{[]string{"run", "--volume", "data:nfs:/x", "a"}, "want NAME:empty or NAME:host:/absolute/path", ""},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), strings.NewReader(""), &out, &errOut, c.args)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("run %q: %v", c.args, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("run %q: %v, want an error with %q", c.args, err, c.wantErr)
		}
		if !strings.Contains(out.String(), c.wantOut) {
			t.Errorf("run %q printed %q, want %q", c.args, out.String(), c.wantOut)
		}
	}
}
