// Command kurma-console is the console service of the Kurma OS: a login
// with the configured password on the machine's consoles and an SSH
// server for the configured keys, each giving a shell in the console
// container (see package bootstrap/console and docs/bootstrap.md). The
// bootstrap runs it in the kurma/console image with the flags the
// configuration's services.console gives.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/kurmaos/kurma/bootstrap/console"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kurma-console:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("kurma-console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg console.Config
	port := fs.Int("ssh-port", 22, "the SSH server's port (0: no SSH)")
	fs.StringVar(&cfg.AuthorizedKeys, "authorized-keys", "/etc/kurma-console/authorized_keys", "OpenSSH public keys that may log in, one a line")
	fs.StringVar(&cfg.PasswordFile, "password-file", "/etc/kurma-console/password", `the crypt(3) hash of the console password, or "none"`)
	fs.StringVar(&cfg.StateDir, "state", "/var/lib/kurma-console", "where the SSH host key is kept")
	fs.StringVar(&cfg.Shell, "shell", "/bin/sh", "the login shell")
	fs.StringVar(&cfg.DevDir, "dev", "/dev", "where the consoles' devices are")
	var ttys listFlag
	fs.Var(&ttys, "tty", "a terminal to offer a login on (repeatable; default: the kernel's consoles)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *port > 0 {
		cfg.SSHAddr = ":" + strconv.Itoa(*port)
	}
	if len(ttys) > 0 {
		cfg.TTYs = ttys
	}
	logger := log.New(stderr, "", 0)
	cfg.Logf = logger.Printf
	return console.Run(ctx, cfg)
}

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return fmt.Sprint(*l) }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
