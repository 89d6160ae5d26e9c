package boot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// runTool runs a program (mke2fs, resize2fs) through the reaper and
// returns what it printed, stdout and stderr together. ctx ending kills
// it.
func (m *Machine) runTool(ctx context.Context, name string, args ...string) ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = w, w
	done, err := m.reaper.Start(cmd)
	w.Close() // the child has its copy
	if err != nil {
		r.Close()
		return nil, err
	}
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&out, r) // until the child (and anything it left behind) closes the pipe
		r.Close()
		close(copied)
	}()
	var ws unix.WaitStatus
	select {
	case ws = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill() // it may have exited meanwhile
		ws = <-done
	}
	<-copied
	_ = cmd.Process.Release() // reaped already; this frees the pidfd
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return out.Bytes(), fmt.Errorf("%s", describeWait(ws))
	}
	return out.Bytes(), nil
}
