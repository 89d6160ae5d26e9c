package console

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// SSHServer is an SSH server that takes the authorized keys only, and
// runs shells and commands for them.
type SSHServer struct {
	config  *ssh.ServerConfig
	hostKey ssh.Signer
	keys    map[string]bool // authorized keys, by their wire form
	shell   string
	logf    func(format string, args ...any)
}

// NewSSHServer loads (or makes, the first time) the host key in
// stateDir and the authorized keys of keysFile.
func NewSSHServer(stateDir, keysFile, shell string, logf func(string, ...any)) (*SSHServer, error) {
	hostKey, err := loadHostKey(filepath.Join(stateDir, "ssh_host_ed25519_key"))
	if err != nil {
		return nil, err
	}
	keys, err := readAuthorizedKeys(keysFile)
	if err != nil {
		return nil, err
	}
	s := &SSHServer{hostKey: hostKey, keys: keys, shell: shell, logf: logf}
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: s.checkKey,
		// No password, keyboard-interactive or "none" authentication:
		// keys only.
		ServerVersion: "SSH-2.0-kurma-console",
	}
	s.config.AddHostKey(hostKey)
	return s, nil
}

// Keys is how many keys may log in.
func (s *SSHServer) Keys() int { return len(s.keys) }

// Fingerprint is the host key's SHA-256 fingerprint.
func (s *SSHServer) Fingerprint() string { return keyFingerprint(s.hostKey.PublicKey()) }

func (s *SSHServer) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if s.keys[string(key.Marshal())] {
		return &ssh.Permissions{Extensions: map[string]string{"key": keyFingerprint(key)}}, nil
	}
	return nil, fmt.Errorf("key %s is not authorized", keyFingerprint(key))
}

// Serve accepts connections until the listener is closed.
func (s *SSHServer) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go s.handle(c)
	}
}

func (s *SSHServer) handle(c net.Conn) {
	defer c.Close()
	conn, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		s.logf("ssh: %s: refused: %v", c.RemoteAddr(), err)
		return
	}
	defer conn.Close()
	s.logf("ssh: %s logged in from %s with key %s", conn.User(), conn.RemoteAddr(), conn.Permissions.Extensions["key"])
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions") // the client may be gone
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			s.logf("ssh: %s: %v", conn.RemoteAddr(), err)
			continue
		}
		sess := &session{ch: ch, shell: s.shell, env: sessionEnv(conn), logf: s.logf}
		go sess.serve(requests)
	}
}

func sessionEnv(conn *ssh.ServerConn) []string {
	env := []string{"USER=root", "LOGNAME=root", "HOME=/root"}
	la, lok := conn.LocalAddr().(*net.TCPAddr)
	ra, rok := conn.RemoteAddr().(*net.TCPAddr)
	if lok && rok {
		env = append(env, fmt.Sprintf("SSH_CONNECTION=%s %d %s %d", ra.IP, ra.Port, la.IP, la.Port))
	}
	return env
}

// loadHostKey reads the host key, or makes and saves a new one.
func loadHostKey(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("host key %s: %w", path, err)
		}
		return signer, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "kurma console host key")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// readAuthorizedKeys reads an authorized_keys file; a missing file has
// no keys.
func readAuthorizedKeys(path string) (map[string]bool, error) {
	keys := map[string]bool{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || path == "" {
		return keys, nil
	}
	if err != nil {
		return nil, err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		key, _, _, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			continue // a blank line, a comment, or a key the configuration check let through
		}
		keys[string(key.Marshal())] = true
	}
	return keys, nil
}
