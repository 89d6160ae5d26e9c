package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"

	"github.com/kurmaos/kurma/internal/syncbuf"
)

// The yescrypt crypt(3) hash of "kurma", as Debian's mkpasswd makes it.
const kurmaHash = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$FQJA1YnD4rc4Ge6OumxaAGMleSqTXJkOdDF/uaufWb1"

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startSSH serves an SSHServer that authorizes key on a loopback port.
func startSSH(t *testing.T, state string, keys ...ssh.Signer) (*SSHServer, string) {
	t.Helper()
	var lines []byte
	for _, k := range keys {
		lines = append(lines, ssh.MarshalAuthorizedKey(k.PublicKey())...)
	}
	keysFile := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(keysFile, append([]byte("# the operators\n\n"), lines...), 0o600); err != nil {
		t.Fatal(err)
	}
	// Connections may log after the test: not through t.
	srv, err := NewSSHServer(state, keysFile, "/bin/sh", func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l) // until closed
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return srv, l.Addr().String()
}

func dial(addr string, key ssh.Signer, host *ssh.PublicKey) (*ssh.Client, error) {
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(key), ssh.Password("kurma")},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			if host != nil {
				*host = k
			}
			return nil
		},
		Timeout: 10 * time.Second,
	})
}

// newSession logs in with key and opens a session, closed when the test
// ends.
func newSession(t *testing.T, addr string, key ssh.Signer, hostKey *ssh.PublicKey) *ssh.Session {
	t.Helper()
	c, err := dial(addr, key, hostKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSSH: an authorized key runs a command and gets its output and exit
// status; another key, and a password, are refused; the host key stays
// across restarts.
func TestSSH(t *testing.T) {
	state := t.TempDir()
	good, bad := newKey(t), newKey(t)
	srv, addr := startSSH(t, state, good)
	var hostKey ssh.PublicKey
	s := newSession(t, addr, good, &hostKey)
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	err := s.Run("echo hello from $USER; echo oops >&2; exit 3")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Errorf("exit: %v, want status 3", err)
	}
	if out.String() != "hello from root\n" || errOut.String() != "oops\n" {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
	if got := ssh.FingerprintSHA256(hostKey); got != srv.Fingerprint() {
		t.Errorf("host key %s, server says %s", got, srv.Fingerprint())
	}

	if _, err := dial(addr, bad, nil); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("a key not authorized logged in: %v", err)
	}

	again, err := NewSSHServer(state, "", "/bin/sh", func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint() != srv.Fingerprint() {
		t.Errorf("host key changed across restarts: %s, then %s", srv.Fingerprint(), again.Fingerprint())
	}
	if fi, err := os.Stat(filepath.Join(state, "ssh_host_ed25519_key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("host key file: %v %v", fi, err)
	}
}

// TestSSHTerminal: a shell on a terminal sees TERM, its window size and
// a tty, and its exit status comes back.
func TestSSHTerminal(t *testing.T) {
	key := newKey(t)
	_, addr := startSSH(t, t.TempDir(), key)
	s := newSession(t, addr, key, nil)
	if err := s.RequestPty("xterm-256color", 40, 100, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	var out syncbuf.Buffer
	s.Stdout = &out
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "echo term=$TERM size=$(stty size) tty=$(tty); exit 7\n")
	err := s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 7 {
		t.Errorf("exit: %v, want status 7", err)
	}
	if !strings.Contains(out.String(), "term=xterm-256color size=40 100 tty=/dev/pts/") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestLogin drives a login on a pseudo-terminal: a wrong password is
// refused, the right one gives a shell on the terminal (its controlling
// terminal), and the password is asked again when the shell ends.
func TestLogin(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	l := &login{tty: tty.Name(), hash: kurmaHash, shell: "/bin/sh", failDelay: 10 * time.Millisecond, logf: t.Logf}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.serve(ctx)
	}()
	// What the terminal shows, read as it comes: a pseudo-terminal's
	// master takes no read deadline.
	var shown syncbuf.Buffer
	go func() { _, _ = io.Copy(&shown, ptmx) }() // until the master is closed
	seen := 0
	expect := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			all := shown.String()
			if i := strings.Index(all[seen:], want); i >= 0 {
				seen += i + len(want)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %q; the terminal showed %q", want, all[seen:])
			}
		}
	}
	expect("Password: ")
	io.WriteString(ptmx, "hunter2\n")
	expect("Login incorrect")
	expect("Password: ")
	io.WriteString(ptmx, "kurma\n")
	// /dev/tty opens only for a process with a controlling terminal.
	io.WriteString(ptmx, "echo in-$((6*7)) $(tty) >/dev/tty; exit\n")
	expect("in-42 " + tty.Name())
	expect("Password: ")
	cancel()
	io.WriteString(ptmx, "\n") // ends the read of the password
	<-done
}

// TestPasswordNone: no password means no login on the terminal, and it
// says so.
func TestPasswordNone(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	hash, err := readPassword(filepath.Join(t.TempDir(), "missing"))
	if err != nil || hash != "none" {
		t.Fatalf("missing password file: %q %v", hash, err)
	}
	l := &login{tty: tty.Name(), hash: hash, shell: "/bin/sh", logf: t.Logf}
	l.serve(context.Background()) // returns at once
	buf := make([]byte, 4096)
	ptmx.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := ptmx.Read(buf)
	if !strings.Contains(string(buf[:n]), "password login is off") {
		t.Errorf("the terminal shows %q", buf[:n])
	}
	p := filepath.Join(t.TempDir(), "password")
	os.WriteFile(p, []byte("$1$saltsalt$e0tpAs/3MQjFhmIELWqtK0\n"), 0o600)
	if _, err := readPassword(p); err == nil {
		t.Error("an MD5 hash was taken")
	}
	os.WriteFile(p, []byte(kurmaHash+"\n"), 0o600)
	if hash, err := readPassword(p); err != nil || hash != kurmaHash {
		t.Errorf("a yescrypt hash: %q %v", hash, err)
	}
}
