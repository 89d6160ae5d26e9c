// Package console is the console service's program, `kurma console`: a
// login with the configured password on each of the machine's consoles
// (the serial line, the screen), and an SSH server that takes the
// configured public keys. Both give a shell in the console container,
// whose image has the kurma command, busybox's tools, and the host's
// root at /host.
//
// Password "none" turns password login off: the consoles say so, and
// SSH with a key is the only way in. SSH never takes a password.
package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/kurmaos/kurma/bootstrap/console/crypt"
)

// Config configures the console.
type Config struct {
	// SSHAddr is where the SSH server listens (":22"); empty: no SSH.
	SSHAddr string
	// AuthorizedKeys is a file of OpenSSH public keys, one a line.
	AuthorizedKeys string
	// PasswordFile holds the crypt(3) hash of the console password, or
	// "none".
	PasswordFile string
	// StateDir keeps the SSH host key.
	StateDir string
	// Shell is the login shell (/bin/sh).
	Shell string
	// TTYs are the terminals to offer a login on, as device paths; nil
	// means the kernel's consoles (/sys/class/tty/console/active) under
	// DevDir.
	TTYs   []string
	DevDir string
	// Logf reports logins, refusals and errors.
	Logf func(format string, args ...any)
}

// Run serves the consoles and SSH until ctx ends or the SSH listener
// fails.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Shell == "" {
		cfg.Shell = "/bin/sh"
	}
	if cfg.DevDir == "" {
		cfg.DevDir = "/dev"
	}
	hash, err := readPassword(cfg.PasswordFile)
	if err != nil {
		return err
	}
	ttys := cfg.TTYs
	if ttys == nil {
		ttys = kernelConsoles("/sys/class/tty/console/active", cfg.DevDir)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, tty := range ttys {
		l := &login{tty: tty, hash: hash, shell: cfg.Shell, logf: cfg.Logf}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.serve(ctx)
		}()
	}
	if cfg.SSHAddr == "" {
		<-ctx.Done()
		return nil
	}
	srv, err := NewSSHServer(cfg.StateDir, cfg.AuthorizedKeys, cfg.Shell, cfg.Logf)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.SSHAddr)
	if err != nil {
		return fmt.Errorf("ssh: %w", err)
	}
	cfg.Logf("ssh: listening on %s for %d authorized keys (host key %s)", ln.Addr(), srv.Keys(), srv.Fingerprint())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	err = srv.Serve(ln)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// readPassword reads the password file: a hash the console can check,
// or "none". A missing file is "none".
func readPassword(path string) (string, error) {
	if path == "" {
		return "none", nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "none", nil
	}
	if err != nil {
		return "", err
	}
	hash := strings.TrimSpace(string(data))
	if hash == "" || hash == "none" {
		return "none", nil
	}
	if !crypt.Supported(hash) {
		return "", fmt.Errorf("%s: %w", path, crypt.ErrUnsupported)
	}
	return hash, nil
}

// kernelConsoles lists the devices of the kernel's consoles; tty0, the
// foreground virtual terminal, is tty1.
func kernelConsoles(active, devDir string) []string {
	data, err := os.ReadFile(active)
	if err != nil {
		return nil
	}
	var out []string
	for _, name := range strings.Fields(string(data)) {
		if name == "tty0" {
			name = "tty1"
		}
		out = append(out, filepath.Join(devDir, name))
	}
	return out
}

// keyFingerprint is a key as ssh-keygen -l shows it.
func keyFingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }
