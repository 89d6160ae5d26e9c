package stage

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// An interactive app (AppConfig.Interactive) runs on a terminal of the
// pod's devpts whose master the init holds: what the app writes goes to
// its log and to the client attached, if one is; a client writes the
// app's input, and sets the terminal's size, on a copy of the master.
// What the app wrote before the first client attached (up to
// maxBacklog) is kept for that client, so that `kurma run --interactive`
// sees the app from its start.
type terminal struct {
	master *os.File
	log    io.Writer
	done   chan struct{} // closed when every process closed the terminal

	mu       sync.Mutex
	attached *os.File // the attached client's output; nil: none
	once     bool     // a client has attached: the backlog is gone
	backlog  []byte
}

const maxBacklog = 64 << 10

// plainTerminal makes a terminal pass data as it is: no echo of the
// input, no \r before \n in the output. Line editing and ^D stay.
func plainTerminal(master *os.File) error {
	fd := int(master.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Lflag &^= unix.ECHO | unix.ECHONL
	t.Oflag &^= unix.OPOST
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// relay copies the terminal's output until every process has closed it
// (the master reads EIO then).
func (t *terminal) relay() {
	defer close(t.done)
	buf := make([]byte, 32<<10)
	for {
		n, err := t.master.Read(buf)
		if n > 0 {
			_, _ = t.log.Write(buf[:n]) // the log pipe takes what comes while the pod lives
			t.mu.Lock()
			switch {
			case t.attached != nil:
				if _, err := t.attached.Write(buf[:n]); err != nil {
					t.attached = nil // the client is gone: detached
				}
			case !t.once:
				t.backlog = append(t.backlog, buf[:min(n, maxBacklog-len(t.backlog))]...)
			}
			t.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// attach makes w the terminal's output; the first client gets the
// backlog first.
func (t *terminal) attach(w *os.File) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.attached != nil {
		return errors.New("a client is attached already")
	}
	if !t.once {
		t.once = true
		if _, err := w.Write(t.backlog); err != nil {
			return err
		}
		t.backlog = nil
	}
	t.attached = w
	return nil
}

func (t *terminal) detach(w *os.File) {
	t.mu.Lock()
	if t.attached == w {
		t.attached = nil
	}
	t.mu.Unlock()
}

// attach serves OpAttach: files holds the client's output.
func (in *initProc) attach(c *net.UnixConn, name string, files []*os.File) error {
	if len(files) != 1 {
		return fmt.Errorf("attach: want 1 descriptor (the output), got %d", len(files))
	}
	var a *app
	for _, x := range in.apps {
		if x.term != nil && (x.cfg.Name == name || name == "") {
			if a != nil {
				return errors.New("attach: the pod has several interactive apps: name one")
			}
			a = x
		}
	}
	if a == nil {
		if name == "" {
			return errors.New("attach: the pod has no interactive app")
		}
		return fmt.Errorf("attach %s: %w, or is not interactive", name, errNoApp)
	}
	a.mu.Lock()
	running := !a.exited && a.pid > 0
	a.mu.Unlock()
	a.term.mu.Lock()
	once := a.term.once
	a.term.mu.Unlock()
	// An app that ended before anyone attached still has its output
	// and exit status for the first client, while the pod lasts.
	if !running && (once || a.pid == 0) {
		return fmt.Errorf("attach %s: the app is not running", a.cfg.Name)
	}
	master, err := unix.Dup(int(a.term.master.Fd()))
	if err != nil {
		return err
	}
	defer unix.Close(master)
	out := files[0]
	if err := a.term.attach(out); err != nil {
		return fmt.Errorf("attach %s: %w", a.cfg.Name, err)
	}
	defer a.term.detach(out)
	if err := Send(c, Reply{Pid: a.pid}, master); err != nil {
		return nil // the client is gone
	}
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		_, _ = c.Read(b[:]) // EOF: the client detached
		close(gone)
	}()
	select {
	case <-a.ended:
	case <-gone:
		return nil
	}
	// What the app wrote last reaches the client before its exit; a
	// process it left behind may hold the terminal, so not forever.
	select {
	case <-a.term.done:
	case <-time.After(time.Second):
	}
	a.term.detach(out)
	out.Close()
	a.mu.Lock()
	st := a.status
	a.mu.Unlock()
	_ = Send(c, Reply{Exit: &st}) // the client may be gone
	return nil
}
