package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

// session is the client's end of an interactive stream (enter, attach):
// the local terminal, in raw mode while it lasts when stdin is one, its
// size and its resizes, and stdin read into the stream.
type session struct {
	c       *cli
	fd      int
	restore func() // nil: stdin is not a terminal we set
}

// isTerminal reports whether the CLI's stdin is a terminal.
func (c *cli) isTerminal() bool {
	f, ok := c.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// openSession puts stdin's terminal in raw mode when the remote end is
// to be a terminal (tty) and stdin is one; it returns the terminal's
// size then (nil otherwise).
func (c *cli) openSession(tty bool) (*session, *kurmav1.TerminalSize, error) {
	s := &session{c: c}
	if !tty || !c.isTerminal() {
		return s, nil, nil
	}
	s.fd = int(c.stdin.(*os.File).Fd())
	var size *kurmav1.TerminalSize
	if w, h, err := term.GetSize(s.fd); err == nil {
		size = &kurmav1.TerminalSize{Rows: uint32(h), Cols: uint32(w)}
	}
	state, err := term.MakeRaw(s.fd)
	if err != nil {
		return nil, nil, err
	}
	s.restore = func() { _ = term.Restore(s.fd, state) } // best effort: the terminal was ours to set
	return s, size, nil
}

// close gives the terminal back as it was.
func (s *session) close() {
	if s.restore != nil {
		s.restore()
	}
}

// follow sends stdin (then its end) and, on a terminal, its resizes,
// until the returned stop is called.
func (s *session) follow(stdin func([]byte) error, closed func(), resize func(*kurmav1.TerminalSize)) (stop func()) {
	stop = func() {}
	if s.restore != nil {
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		stop = func() { signal.Stop(winch) }
		go func() {
			for range winch {
				if w, h, err := term.GetSize(s.fd); err == nil {
					resize(&kurmav1.TerminalSize{Rows: uint32(h), Cols: uint32(w)})
				}
			}
		}()
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := s.c.stdin.Read(buf)
			if n > 0 {
				if stdin(append([]byte(nil), buf[:n]...)) != nil {
					return
				}
			}
			if err != nil {
				closed()
				return
			}
		}
	}()
	return stop
}
