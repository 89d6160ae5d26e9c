package console

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// session is one SSH session: a shell or a command, with a terminal when
// the client asks for one.
type session struct {
	ch    ssh.Channel
	shell string
	env   []string
	logf  func(format string, args ...any)

	mu      sync.Mutex
	term    string
	size    *pty.Winsize
	ptmx    *os.File // the terminal's master once the command runs
	started bool
}

// The payloads of the requests a session takes (RFC 4254).
type (
	ptyRequest struct {
		Term             string
		Cols, Rows, W, H uint32
		Modes            string
	}
	windowChange struct{ Cols, Rows, W, H uint32 }
	envRequest   struct{ Name, Value string }
	execRequest  struct{ Command string }
	exitStatus   struct{ Status uint32 }
)

func (s *session) serve(reqs <-chan *ssh.Request) {
	for req := range reqs {
		ok := false
		switch req.Type {
		case "pty-req":
			var p ptyRequest
			if ssh.Unmarshal(req.Payload, &p) == nil {
				s.mu.Lock()
				s.term, s.size = p.Term, &pty.Winsize{Rows: uint16(p.Rows), Cols: uint16(p.Cols)}
				s.mu.Unlock()
				ok = true
			}
		case "window-change":
			var w windowChange
			if ssh.Unmarshal(req.Payload, &w) == nil {
				s.resize(&pty.Winsize{Rows: uint16(w.Rows), Cols: uint16(w.Cols)})
				ok = true
			}
		case "env":
			var e envRequest
			// As Debian's sshd_config: the locale only.
			if ssh.Unmarshal(req.Payload, &e) == nil && (e.Name == "LANG" || strings.HasPrefix(e.Name, "LC_")) {
				s.mu.Lock()
				s.env = append(s.env, e.Name+"="+e.Value)
				s.mu.Unlock()
				ok = true
			}
		case "shell", "exec":
			var args []string
			if req.Type == "exec" {
				var e execRequest
				if ssh.Unmarshal(req.Payload, &e) != nil {
					break
				}
				args = []string{s.shell, "-c", e.Command}
			} else {
				args = []string{s.shell, "-l"}
			}
			ok = s.start(args)
		}
		if req.WantReply {
			_ = req.Reply(ok, nil) // the client may be gone
		}
	}
}

func (s *session) resize(size *pty.Winsize) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size = size
	if s.ptmx != nil {
		_ = pty.Setsize(s.ptmx, size) // the command may have ended
	}
}

// start runs the command once; its end closes the session with its exit
// status.
func (s *session) start(args []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return false
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), "SHELL="+s.shell), s.env...)
	cmd.Dir = homeDir()
	var wait func() int
	if s.size != nil {
		cmd.Env = append(cmd.Env, "TERM="+s.term)
		ptmx, err := pty.StartWithSize(cmd, s.size)
		if err != nil {
			s.logf("ssh: start %s: %v", args[0], err)
			return false
		}
		s.ptmx = ptmx
		go func() { _, _ = io.Copy(ptmx, s.ch) }() // until the client closes or the terminal does
		wait = func() int {
			_, _ = io.Copy(s.ch, ptmx) // until EIO: every process has let go of the terminal
			code := exitCode(cmd.Wait())
			ptmx.Close()
			return code
		}
	} else {
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return false
		}
		cmd.Stdout, cmd.Stderr = s.ch, s.ch.Stderr()
		if err := cmd.Start(); err != nil {
			s.logf("ssh: start %s: %v", args[0], err)
			return false
		}
		go func() {
			_, _ = io.Copy(stdin, s.ch) // until the client's EOF, or the command is gone
			stdin.Close()
		}()
		wait = func() int { return exitCode(cmd.Wait()) }
	}
	s.started = true
	go func() {
		code := wait()
		_, _ = s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{uint32(code)})) // the client may be gone
		s.ch.Close()
	}()
	return true
}

// homeDir is where a shell starts: root's home, or / when there is none
// (or it is not ours to enter, in a test).
func homeDir() string {
	if unix.Access("/root", unix.X_OK) == nil {
		return "/root"
	}
	return "/"
}

// exitCode is a command's exit status as a shell gives it: 128+N when
// signal N killed it.
func exitCode(err error) int {
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		return 255
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}
