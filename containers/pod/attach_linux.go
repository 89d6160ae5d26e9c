package pod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/stage"
)

// AttachOptions attach a client to the terminal of an interactive app
// (InteractiveAnnotation).
type AttachOptions struct {
	// App is the interactive app; empty: the pod's only one.
	App string
	// TTY says the client is a terminal itself, whose user ends the
	// input (^D). Without it the end of Stdin is the end of the app's
	// input: the client sends ^D.
	TTY        bool
	Rows, Cols uint16
	// Resize carries new terminal sizes while attached.
	Resize <-chan WindowSize
	Stdin  io.Reader
	Stdout io.Writer
}

// Attach attaches to an interactive app's terminal until the app exits
// (its exit status is returned) or ctx ends (the client detaches; the
// app runs on). The first client to attach gets what the app wrote
// since its start first.
func (p *Pod) Attach(ctx context.Context, o AttachOptions) (stage.ExitStatus, error) {
	p.mu.Lock()
	state := p.rec.State
	p.mu.Unlock()
	if state != Running {
		return stage.ExitStatus{}, fmt.Errorf("attach to pod %s: it is %s, not running", p.uuid, state)
	}
	c, done, err := p.connect(context.Background())
	if err != nil {
		return stage.ExitStatus{}, err
	}
	defer done()
	// Detaching: the init sees the connection's end, detaches, and
	// closes it, so that once Attach returns another client may attach.
	stopDetach := context.AfterFunc(ctx, func() {
		_ = c.CloseWrite()                                     // a connection always takes it
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second)) // as above
	})
	defer stopDetach()
	r, w, err := os.Pipe()
	if err != nil {
		return stage.ExitStatus{}, err
	}
	err = stage.Send(c, stage.Request{Op: stage.OpAttach, App: o.App}, int(w.Fd()))
	w.Close() // the init holds its own copy: r ends when it closes it
	out := o.Stdout
	if out == nil {
		out = io.Discard
	}
	var copies sync.WaitGroup
	copies.Add(1)
	go func() {
		defer copies.Done()
		_, _ = io.Copy(out, r)
		r.Close()
	}()
	fail := func(err error) (stage.ExitStatus, error) {
		c.Close()
		return stage.ExitStatus{}, fmt.Errorf("attach to pod %s: %w", p.uuid, err)
	}
	if err != nil {
		return fail(err)
	}
	var rep stage.Reply
	files, err := stage.Recv(c, &rep)
	if err != nil {
		return fail(err)
	}
	if rep.Error != "" {
		closeFiles(files)
		return fail(errors.New(rep.Error))
	}
	if len(files) != 1 {
		closeFiles(files)
		return fail(errors.New("the init sent no terminal"))
	}
	master := files[0]
	defer master.Close()
	fd := int(master.Fd())
	if o.Rows > 0 && o.Cols > 0 {
		_ = unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: o.Rows, Col: o.Cols}) // a size the terminal refuses keeps its own
	}
	defer followResize(master, o.Resize)()
	if o.Stdin != nil {
		go func() {
			_, err := io.Copy(master, o.Stdin)
			if err == nil && !o.TTY {
				// The end of the input: ^D, twice in case a line was
				// left unfinished (the first then ends the line).
				eof := byte(4)
				if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
					eof = t.Cc[unix.VEOF]
				}
				_, _ = master.Write([]byte{eof, eof}) // the app may be gone
			}
		}()
	}
	var last stage.Reply
	if _, err := stage.Recv(c, &last); err != nil || last.Exit == nil {
		if ctx.Err() != nil {
			return stage.ExitStatus{}, ctx.Err() // detached
		}
		if err == nil {
			err = errors.New(last.Error)
		}
		return fail(fmt.Errorf("no exit status: %w", err))
	}
	copies.Wait()
	return *last.Exit, nil
}
