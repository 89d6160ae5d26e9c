package boot

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// An Action is how the machine ends.
type Action string

const (
	Poweroff Action = "poweroff"
	Reboot   Action = "reboot"
	Halt     Action = "halt"
)

// ParseAction reads a kurma.shutdown value.
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case Poweroff, Reboot, Halt:
		return a, nil
	}
	return "", fmt.Errorf("%q is not a shutdown action (poweroff, reboot, halt)", s)
}

func (a Action) rebootCmd() int {
	switch a {
	case Poweroff:
		return unix.LINUX_REBOOT_CMD_POWER_OFF
	case Halt:
		return unix.LINUX_REBOOT_CMD_HALT
	}
	return unix.LINUX_REBOOT_CMD_RESTART
}

// The signals PID 1 acts on:
//
//	SIGINT   ctrl-alt-del (the kernel sends it once CAD is off): the
//	         configured action (kurma.shutdown=, reboot by default)
//	SIGTERM  the configured action
//	SIGUSR1  halt
//	SIGUSR2  poweroff
//	SIGPWR   poweroff (power failure, as sysvinit)
//	SIGRTMIN+3, +4, +5  halt, poweroff, reboot (as systemd: the runtime's
//	         reboot and poweroff calls use them)
//	SIGCHLD  reap
var shutdownSignals = map[os.Signal]func(m *Machine) Action{
	SignalHalt:     func(*Machine) Action { return Halt },
	SignalPoweroff: func(*Machine) Action { return Poweroff },
	SignalReboot:   func(*Machine) Action { return Reboot },
	unix.SIGINT:    func(m *Machine) Action { return m.onSignal },
	unix.SIGTERM:   func(m *Machine) Action { return m.onSignal },
	unix.SIGUSR1:   func(*Machine) Action { return Halt },
	unix.SIGUSR2:   func(*Machine) Action { return Poweroff },
	unix.SIGPWR:    func(*Machine) Action { return Poweroff },
}

// The real-time signals that ask PID 1 to halt, power off or reboot, as
// systemd numbers them (SIGRTMIN is 34 in the C library's numbering,
// which kill(1) uses).
const (
	sigRTMIN       = 34
	SignalHalt     = unix.Signal(sigRTMIN + 3)
	SignalPoweroff = unix.Signal(sigRTMIN + 4)
	SignalReboot   = unix.Signal(sigRTMIN + 5)
)

// handleSignals turns ctrl-alt-del into SIGINT and serves signals for the
// life of the machine.
func (m *Machine) handleSignals() {
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		m.log.Warnf("ctrl-alt-del stays a hard reset: %v", err)
	}
	ch := make(chan os.Signal, 32)
	signal.Notify(ch, unix.SIGCHLD)
	for s := range shutdownSignals {
		signal.Notify(ch, s)
	}
	go func() {
		for s := range ch {
			if s == unix.SIGCHLD {
				m.reaper.Reap()
				continue
			}
			action := shutdownSignals[s](m)
			m.log.Infof("%s received", signalName(s.(unix.Signal)))
			go m.Shutdown(action)
		}
	}()
}

// Shutdown ends the machine: every process gets SIGTERM and a grace
// period, then SIGKILL; filesystems are synced and unmounted; then the
// kernel powers off, reboots or halts. It never returns; a second call
// waits for the first.
func (m *Machine) Shutdown(a Action) {
	m.shutdownOnce.Do(func() { m.shutdown(a) })
	select {}
}

func (m *Machine) shutdown(a Action) {
	m.log.Infof("shutdown: %s", a)
	for _, hook := range m.shutdownHooks {
		hook()
	}
	killAll(m.log, m.gracePeriod)
	unix.Sync()
	unmountAll(m.log)
	unix.Sync()
	m.log.Infof("%s now", a)
	if err := unix.Reboot(a.rebootCmd()); err != nil {
		m.log.Errorf("reboot(2) %s: %v", a, err)
	}
}

// killAll sends SIGTERM to every process but PID 1, waits up to grace for
// them to exit, then SIGKILLs what is left.
func killAll(log *Logger, grace time.Duration) {
	if err := unix.Kill(-1, unix.SIGTERM); err == unix.ESRCH {
		return // nothing else runs
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if len(otherProcesses()) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left := otherProcesses(); len(left) > 0 {
		log.Warnf("shutdown: %d processes ignored SIGTERM for %s, killing them", len(left), grace)
		_ = unix.Kill(-1, unix.SIGKILL) // ESRCH if they went meanwhile
	}
}

// otherProcesses lists the PIDs of user processes other than PID 1 that
// are still alive (zombies are gone as far as shutdown cares).
func otherProcesses() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == 1 {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Kernel threads have no command line; zombies are state Z.
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if len(cmdline) == 0 {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// unmountAll unmounts every filesystem it can, deepest first; the API
// filesystems and the root stay (the kernel does not need them gone).
func unmountAll(log *Logger) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var targets []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 {
			targets = append(targets, unescapeMountPath(fields[4]))
		}
	}
	f.Close()
	sort.Sort(sort.Reverse(sort.StringSlice(targets)))
	for _, t := range targets {
		if keepMounted(t) {
			continue
		}
		if err := unix.Unmount(t, 0); err != nil && err != unix.EINVAL {
			// Busy: detach it, and remount read-only what can be.
			_ = unix.Mount("", t, "", unix.MS_REMOUNT|unix.MS_RDONLY, "") // best effort before the lazy unmount
			if err := unix.Unmount(t, unix.MNT_DETACH); err != nil {
				log.Warnf("shutdown: unmount %s: %v", t, err)
			}
		}
	}
}

// keepMounted tells the mounts shutdown leaves alone: the root and the
// API and memory filesystems, which hold nothing to flush.
func keepMounted(target string) bool {
	if target == "/" {
		return true
	}
	for _, m := range movedMounts {
		if target == m || strings.HasPrefix(target, m+"/") {
			return true
		}
	}
	return false
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func signalName(s unix.Signal) string {
	if s > sigRTMIN && s < sigRTMIN+30 {
		return fmt.Sprintf("SIGRTMIN+%d", int(s-sigRTMIN))
	}
	return unix.SignalName(s)
}
