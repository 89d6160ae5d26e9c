package bootstrap

import (
	"strconv"
	"strings"
	"time"

	"github.com/kurmaos/kurma/config"
)

// The console service (services.console): a privileged container of the
// kurma/busybox image that the initrd ships, running `kurma console` (the
// host's kurma command, bound in): a login on the machine's consoles with
// the configured password, and an SSH server for the configured keys,
// each giving a shell in the container, with busybox's tools, the host's
// devices, its root at /host, and the kurma command on the API.
const (
	// ConsoleName is the console service's container (and pod) name.
	ConsoleName = "console"
	// ConsoleImage is its image.
	ConsoleImage = "kurma/busybox"
	// HostKurma is the kurma command in the console (and on the OS).
	HostKurma = "/bin/kurma"
	// HostKurmaFile is the file bound there: the OS's /bin/kurma is a
	// link to /init, the one kurma binary, and a host volume's source
	// may not be a symlink.
	HostKurmaFile = "/init"
	// ConsoleState is the host directory that keeps its SSH host key
	// across restarts (and across boots when volumes are on a disk).
	ConsoleState = "/var/lib/kurma/volumes/console"
)

// Where `kurma console` finds its configuration in the container.
const (
	consoleKeys     = "/etc/kurma-console/authorized_keys"
	consolePassword = "/etc/kurma-console/password"
	consoleStateDir = "/var/lib/kurma-console"
)

func consoleContainer(cfg *config.Config) config.Container {
	cc := cfg.Services.Console
	keys := strings.Join(cc.SSHAuthorizedKeys, "\n")
	if keys != "" {
		keys += "\n"
	}
	return config.Container{
		Name:    ConsoleName,
		Enabled: true,
		Image:   ConsoleImage,
		Kind:    config.KindService,
		Restart: config.Restart{Policy: config.RestartAlways, Backoff: time.Second, MaxBackoff: 30 * time.Second},
		Args: []string{HostKurma, "console",
			"--ssh-port", strconv.Itoa(cc.SSHPort),
			"--authorized-keys", consoleKeys,
			"--password-file", consolePassword,
			"--state", consoleStateDir},
		Files: []config.File{
			{Path: consoleKeys, Content: keys, Mode: "0600"},
			{Path: consolePassword, Content: cc.Password + "\n", Mode: "0600"},
			{Path: "/etc/profile", Content: consoleProfile, Mode: "0644"},
			{Path: "/etc/motd", Content: consoleMotd, Mode: "0644"},
		},
		Isolators: map[string]any{
			// Every capability and the host's devices (the consoles'
			// terminals among them).
			"host/privileged": true,
			// The API's socket at /run/kurma/kurma.sock, where the kurma
			// command looks.
			"host/api-access": true,
			// The host's network, for the SSH port; its hostname; its IPC.
			"os/linux/namespaces": map[string]any{"net": "host", "uts": "host", "ipc": "host"},
		},
		Volumes: []config.Volume{
			{Name: "state", Kind: "host", Source: ConsoleState, Path: consoleStateDir},
			{Name: "host", Kind: "host", Source: "/", Path: "/host"},
			// The host's kurma command: the same version as the API
			// it talks to, and the image does not carry a second copy
			// (14 MB that every boot would import).
			{Name: "kurma", Kind: "host", Source: HostKurmaFile, Path: HostKurma, ReadOnly: true},
		},
	}
}

// The console's shell: busybox's tools and the kurma command.
const (
	consoleProfile = `export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PS1='\u@\h:\w\$ '
case $- in *i*) cat /etc/motd ;; esac
`
	consoleMotd = `
Kurma console: busybox's tools and the kurma command (kurma list,
kurma logs POD, kurma help). The host's root is at /host.

`
)
