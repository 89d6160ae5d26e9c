package console

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/kurmaos/kurma/bootstrap/console/crypt"
)

// login offers a shell on one terminal to whoever types the password,
// again each time the shell ends.
type login struct {
	tty, hash, shell string
	logf             func(format string, args ...any)
	// failDelay is the wait after a wrong password (2 s).
	failDelay time.Duration
}

func (l *login) serve(ctx context.Context) {
	if l.failDelay == 0 {
		l.failDelay = 2 * time.Second
	}
	if _, err := os.Stat(l.tty); err != nil {
		l.logf("login: no %s in the console container: no login there (%v)", l.tty, err)
		return
	}
	if l.hash == "none" {
		if f, err := openTTY(l.tty); err == nil {
			fmt.Fprintf(f, "\r\nkurma-console: password login is off on this console (services.console.password is none): log in over SSH\r\n")
			f.Close()
		}
		l.logf("login: off on %s: no password is configured", l.tty)
		return
	}
	l.logf("login: on %s", l.tty)
	for ctx.Err() == nil {
		if err := l.once(ctx); err != nil {
			l.logf("login: %s: %v", l.tty, err)
			select {
			case <-ctx.Done():
			case <-time.After(l.failDelay):
			}
		}
	}
}

// once asks for the password and, when it matches, runs a shell on the
// terminal until it exits.
func (l *login) once(ctx context.Context) error {
	f, err := openTTY(l.tty)
	if err != nil {
		return err
	}
	defer f.Close()
	host, _ := os.Hostname()
	fmt.Fprintf(f, "\r\nKurma %s (%s)\r\nPassword: ", host, filepath.Base(l.tty))
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprint(f, "\r\n")
	if err != nil {
		return fmt.Errorf("read the password: %w", err)
	}
	if err := crypt.Verify(l.hash, string(pw)); err != nil {
		fmt.Fprint(f, "Login incorrect\r\n")
		if errors.Is(err, crypt.ErrMismatch) {
			return errors.New("wrong password")
		}
		return err
	}
	l.logf("login: root on %s", l.tty)
	cmd := exec.CommandContext(ctx, l.shell, "-l")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
	cmd.Env = append(os.Environ(), "USER=root", "LOGNAME=root", "HOME=/root", "SHELL="+l.shell, "TERM="+termOf(l.tty))
	cmd.Dir = homeDir()
	// Its own session, with the terminal as its controlling terminal:
	// ctrl-c reaches it, and its end hangs up what it left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return err
		}
	}
	return nil
}

// openTTY opens a terminal as getty does: without waiting for a modem's
// carrier (a serial line has none: open would block), then with CLOCAL
// set, so that reads and writes do not wait for it either.
func openTTY(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err == nil {
		t.Cflag |= unix.CLOCAL
		err = unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}
	if err == nil {
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "set up", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// termOf is the TERM of a terminal: linux for a virtual terminal
// (tty1), vt100 for a serial line, whose far end is unknown.
func termOf(tty string) string {
	n := strings.TrimPrefix(filepath.Base(tty), "tty")
	if n != "" && n[0] >= '0' && n[0] <= '9' {
		return "linux"
	}
	return "vt100"
}
