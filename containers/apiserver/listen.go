package apiserver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// ErrSocketInUse is returned when another daemon serves on the socket.
var ErrSocketInUse = errors.New("another daemon serves on the socket")

// ListenUnix listens on a unix socket at path, mode 0660, owned by root and
// the group (root only when the group does not exist or is empty). The
// socket is made in a private directory, given its mode and owner, then
// linked into place, so it is never reachable with other permissions. A
// stale socket (nobody accepts on it) is replaced; a live one is never
// taken over.
func ListenUnix(path, group string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	gid := -1
	if group != "" {
		if g, err := user.LookupGroup(group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	tmp, err := os.MkdirTemp(dir, ".socket-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	tmpSock := filepath.Join(tmp, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpSock, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(tmpSock, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	if gid >= 0 {
		if err := os.Chown(tmpSock, 0, gid); err != nil {
			l.Close()
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		err := os.Link(tmpSock, path)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || attempt > 0 {
			l.Close()
			return nil, fmt.Errorf("listen on %s: %w", path, err)
		}
		if err := removeStale(path); err != nil {
			l.Close()
			return nil, err
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		l.Close()
		return nil, err
	}
	return &unixListener{UnixListener: l, path: path, ino: st.Ino}, nil
}

// removeStale removes a socket nobody serves on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil // gone meanwhile
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("listen on %s: it exists and is not a socket", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen on %s: %w", path, ErrSocketInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("listen on %s: the socket there answers neither yes nor no: %w", path, err)
	}
	return os.Remove(path)
}

// unixListener removes its socket when closed, unless another daemon
// has replaced it meanwhile.
type unixListener struct {
	*net.UnixListener
	path string
	ino  uint64
}

// Addr is the socket's path (the listener was made at a temporary one).
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	var st syscall.Stat_t
	if syscall.Stat(l.path, &st) == nil && st.Ino == l.ino {
		_ = os.Remove(l.path) // best effort: a stale socket is replaced at the next start
	}
	return err
}

// TLSFiles are the remote listener's certificates (PEM files).
type TLSFiles struct {
	Cert, Key string // the server's certificate and key
	ClientCA  string // the CA client certificates must chain to
}

// TLSConfig is the remote listener's TLS: 1.3 only, and a client
// certificate from the client CA required.
func TLSConfig(files TLSFiles) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	caPEM, err := os.ReadFile(files.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("client CA %s: no PEM certificate in it", files.ClientCA)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

// ListenTLS listens on a TCP address with the remote listener's TLS.
func ListenTLS(addr string, files TLSFiles) (net.Listener, error) {
	cfg, err := TLSConfig(files)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(l, cfg), nil
}
