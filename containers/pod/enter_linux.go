package pod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/stage"
)

// EnterOptions describe a command to run in a running app.
type EnterOptions struct {
	App  string
	Args []string
	// Env is added to the app's environment (NAME=value).
	Env []string
	// TTY runs the command on a terminal of the pod's devpts: Stdin and
	// Stdout are its input and output (Stderr is not used). Rows and
	// Cols set its size.
	TTY        bool
	Rows, Cols uint16
	// Resize, with a TTY, carries new terminal sizes while the command
	// runs.
	Resize <-chan WindowSize
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// WindowSize is a terminal's size.
type WindowSize struct{ Rows, Cols uint16 }

// Enter runs a command inside a running app of the pod (its mount
// namespace and root, the pod's other namespaces, its user, groups and
// environment) and returns how it exited. The in-pod init starts it; the
// daemon never joins a namespace.
func (p *Pod) Enter(ctx context.Context, o EnterOptions) (stage.ExitStatus, error) {
	p.mu.Lock()
	state := p.rec.State
	p.mu.Unlock()
	if state != Running {
		return stage.ExitStatus{}, fmt.Errorf("enter pod %s: it is %s, not running", p.uuid, state)
	}
	c, done, err := p.connect(ctx)
	if err != nil {
		return stage.ExitStatus{}, err
	}
	defer done()

	req := stage.Request{Op: stage.OpEnter, Enter: &stage.EnterRequest{App: o.App, Args: o.Args, Env: o.Env, TTY: o.TTY, Rows: o.Rows, Cols: o.Cols}}
	var copies sync.WaitGroup
	var theirs []*os.File // the command's ends, sent to the init
	if !o.TTY {
		inR, inW, err := os.Pipe()
		if err != nil {
			return stage.ExitStatus{}, err
		}
		theirs = append(theirs, inR)
		go func() {
			if o.Stdin != nil {
				_, _ = io.Copy(inW, o.Stdin) // ends when the command stops reading
			}
			inW.Close()
		}()
		for _, out := range []io.Writer{o.Stdout, o.Stderr} {
			r, w, err := os.Pipe()
			if err != nil {
				closeFiles(theirs)
				return stage.ExitStatus{}, err
			}
			theirs = append(theirs, w)
			if out == nil {
				out = io.Discard
			}
			copies.Add(1)
			go func() {
				defer copies.Done()
				_, _ = io.Copy(out, r) // ends at EOF: every writer closed
				r.Close()
			}()
		}
	}
	fds := make([]int, 0, len(theirs))
	for _, f := range theirs {
		fds = append(fds, int(f.Fd()))
	}
	err = stage.Send(c, req, fds...)
	// The init holds its own copies now (or the request failed): ours
	// must be closed for the copies above to see EOF.
	closeFiles(theirs)
	if err != nil {
		return stage.ExitStatus{}, fmt.Errorf("enter pod %s: %w", p.uuid, err)
	}
	var rep stage.Reply
	files, err := stage.Recv(c, &rep)
	if err != nil {
		return stage.ExitStatus{}, fmt.Errorf("enter pod %s: %w", p.uuid, err)
	}
	if rep.Error != "" {
		closeFiles(files)
		return stage.ExitStatus{}, fmt.Errorf("enter pod %s: %s", p.uuid, rep.Error)
	}
	if o.TTY {
		if len(files) != 1 {
			closeFiles(files)
			return stage.ExitStatus{}, errors.New("enter: the init sent no terminal")
		}
		master := files[0]
		defer master.Close()
		defer followResize(master, o.Resize)()
		if o.Stdin != nil {
			go func() { _, _ = io.Copy(master, o.Stdin) }() // ends with the terminal
		}
		out := o.Stdout
		if out == nil {
			out = io.Discard
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			_, _ = io.Copy(out, master) // EIO once the command and its children closed the terminal
		}()
	}
	var last stage.Reply
	if _, err := stage.Recv(c, &last); err != nil || last.Exit == nil {
		return stage.ExitStatus{}, fmt.Errorf("enter pod %s: no exit status: %v", p.uuid, err)
	}
	copies.Wait()
	return *last.Exit, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// followResize sizes a terminal (its master) to each size that comes on
// resize, until the returned stop is called.
func followResize(master *os.File, resize <-chan WindowSize) (stop func()) {
	if resize == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case ws := <-resize:
				_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Rows, Col: ws.Cols}) // a size the terminal refuses keeps the last one
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
