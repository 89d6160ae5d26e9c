package main

import (
	"fmt"
	"log"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kurmaos/kurma/bootstrap/console"
)

func (c *cli) consoleCmd() *cobra.Command {
	var (
		cfg  console.Config
		port int
		ttys []string
	)
	cmd := &cobra.Command{
		Use:   "console",
		Short: "The console service: password login on the consoles, SSH for the configured keys",
		Long: `console is the console service of the Kurma OS: a login with the configured
password on the machine's consoles and an SSH server for the configured
keys, each giving a shell in the console container. The bootstrap runs it
in its privileged container (docs/bootstrap.md) with the flags the
configuration's services.console gives.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if port < 0 || port > 65535 {
				return fmt.Errorf("console: --ssh-port %d: 0 (no SSH) to 65535", port)
			}
			if port > 0 {
				cfg.SSHAddr = ":" + strconv.Itoa(port)
			}
			if len(ttys) > 0 {
				cfg.TTYs = ttys
			}
			cfg.Logf = log.New(c.stderr, "", 0).Printf
			return console.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.IntVar(&port, "ssh-port", 22, "the SSH server's port (0: no SSH)")
	f.StringVar(&cfg.AuthorizedKeys, "authorized-keys", "/etc/kurma-console/authorized_keys", "OpenSSH public keys that may log in, one a line")
	f.StringVar(&cfg.PasswordFile, "password-file", "/etc/kurma-console/password", `the crypt(3) hash of the console password, or "none"`)
	f.StringVar(&cfg.StateDir, "state", "/var/lib/kurma-console", "where the SSH host key is kept")
	f.StringVar(&cfg.Shell, "shell", "/bin/sh", "the login shell")
	f.StringVar(&cfg.DevDir, "dev", "/dev", "where the consoles' devices are")
	f.StringArrayVar(&ttys, "tty", nil, "a terminal to offer a login on (repeat; default: the kernel's consoles)")
	return cmd
}
