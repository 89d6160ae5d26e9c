package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/config"
	"github.com/kurmaos/kurma/init/network"
	kmod "github.com/kurmaos/kurma/kernel-modules"
)

// envTimeline carries the boot timeline across the exec that follows
// switch_root, with the boot clock at the moment of the exec.
const envTimeline = "KURMA_BOOT_TIMELINE"

const bootLog = "/run/kurma/boot.log"

// Machine is the state of the booting system, shared by the phases.
type Machine struct {
	log      *Logger
	reaper   *reaper
	cmdline  string // /proc/cmdline
	release  map[string]string
	timeline []Step

	// The configuration: its loader (layers and datasources so far), the
	// effective configuration, and the errors already shown.
	cfgLoader *config.Loader
	eff       *config.Effective
	cfg       *config.Config
	cfgShown  map[string]bool

	// onSignal is what SIGINT (ctrl-alt-del) and SIGTERM do.
	onSignal    Action
	gracePeriod time.Duration
	// failPhase names a phase to fail on purpose (kurma.test.fail-phase).
	failPhase string
	modLoader *kmod.Loader   // from the modules phase, for modprobe
	isReady   atomic.Bool    // the boot reached ready
	daemon    *daemon        // the container runtime, once started
	boots     *bootstrapping // the bootstrap's services, once started
	test      testSwitches
	net       *network.Stack // from the network phase

	// hostMu guards the hostname's sources that change after boot.
	hostMu        sync.Mutex
	dhcpHostname  string
	shutdownOnce  sync.Once
	shutdownHooks []func()
}

// IsInit reports whether this process is to run Main: it is PID 1
// started as /init (the kernel's argv[0] for the initramfs's init), or
// the child PID 1 re-executes for its pivot_root check. The kurma binary
// is the OS's init as well as its command and daemon; it is PID 1 of a
// pod's PID namespace too when the runtime re-executes it as the pod's
// init, which is not the OS's init (its argv[0] is not /init).
func IsInit() bool {
	if len(os.Args) > 1 && os.Args[1] == pivotCheckArg {
		return true
	}
	return os.Getpid() == 1 && len(os.Args) > 0 && filepath.Base(os.Args[0]) == "init"
}

// Main is PID 1. It never returns: the kernel panics if init exits.
func Main() {
	if len(os.Args) > 1 && os.Args[1] == pivotCheckArg {
		os.Exit(pivotCheck())
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "kurma: the init of the Kurma OS runs only as PID 1; on a Linux host, run the runtime with `kurma daemon`")
		os.Exit(2)
	}
	m := &Machine{
		log:         NewLogger(os.Stdout),
		reaper:      newReaper(),
		cfgShown:    map[string]bool{},
		onSignal:    Reboot,
		gracePeriod: 10 * time.Second,
	}
	unix.Umask(0o022)
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	os.Setenv("HOME", "/")
	// The first row of the timeline: from the kernel's start to PID 1's
	// (the kernel's own boot, unpacking the initramfs, the Go runtime).
	m.timeline = []Step{{Name: "kernel", Essential: true, Took: bootClock()}}
	m.handleSignals()
	m.boot(context.Background())
	for {
		time.Sleep(time.Hour) // signals and the phases' goroutines run the machine now
	}
}

// phases is the boot sequence, top to bottom.
func (m *Machine) phases() []Phase {
	return []Phase{
		{Name: "early", Essential: true, Run: m.early},
		{Name: "switch-root", Essential: true, Run: m.switchRoot},
		{Name: "config", Essential: false, Run: m.config},
		{Name: "modules", Essential: false, Run: m.modules},
		{Name: "datasources", Essential: false, Run: m.localDatasources},
		{Name: "cgroups", Essential: true, Run: m.cgroups},
		{Name: "disks", Essential: false, Run: m.disks},
		{Name: "host", Essential: false, Run: m.host},
		{Name: "network", Essential: false, Run: m.network},
		{Name: "datasources-net", Essential: false, Run: m.networkDatasources},
		{Name: "time", Essential: false, Run: m.clock},
		{Name: "runtime", Essential: true, Run: m.runtime},
		{Name: "bootstrap", Essential: true, Run: m.bootstrap},
	}
}

func (m *Machine) boot(ctx context.Context) {
	phases := m.phases()
	if m.resume() {
		// early and switch-root ran in the process that exec'd us.
		phases = phases[2:]
	}
	failed, err := m.runPhases(ctx, phases)
	if failed != nil {
		m.emergency(failed, err)
		return
	}
	m.ready()
}

func (m *Machine) runPhases(ctx context.Context, phases []Phase) (*Phase, error) {
	return runPhases(ctx, m.log, &m.timeline, phases, func() string { return m.failPhase })
}

// early mounts the API filesystems and starts logging to the kernel log
// and the boot log.
func (m *Machine) early(context.Context) error {
	if err := mountEarly(); err != nil {
		return err
	}
	m.attachLogs()
	return nil
}

// attachLogs opens /dev/kmsg and the boot log, and reads from the command
// line what the boot needs before the configuration: kurma.debug and the
// test suite's kurma.test.fail-phase.
func (m *Machine) attachLogs() {
	data, _ := os.ReadFile("/proc/cmdline") // mounted by now; empty means no parameters
	m.cmdline = string(data)
	for _, a := range config.SplitCmdline(m.cmdline) {
		switch a.Key {
		case "kurma.debug":
			m.log.SetDebug(!a.HasVal || a.Value == "1" || a.Value == "true" || a.Value == "yes" || a.Value == "on")
		case config.TestCmdlinePrefix + "fail-phase":
			m.failPhase = a.Value
		case config.TestCmdlinePrefix + "echo":
			m.test.echo = a.Value
		case config.TestCmdlinePrefix + "marker":
			m.test.marker = a.Value
		case config.TestCmdlinePrefix + "ntp-ahead":
			d, err := time.ParseDuration(a.Value)
			if err != nil {
				m.log.Errorf("test: %s: %v", a.Key, err)
			}
			m.test.ntpAhead = d
		}
	}
	// Without this the kernel drops all but 10 of our lines every 5 s.
	_ = os.WriteFile("/proc/sys/kernel/printk_devkmsg", []byte("on\n"), 0) // older kernels rate-limit; messages still reach the console
	if kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		m.log.AttachKmsg(kmsg)
	} else {
		m.log.Warnf("no kernel log: %v", err)
	}
	if err := os.MkdirAll("/run/kurma", 0o755); err == nil {
		f, err := os.OpenFile(bootLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err == nil {
			err = m.log.AttachFile(f)
		}
		if err != nil {
			m.log.Warnf("no boot log: %v", err)
		}
	}
}

// switchRoot moves the system from the initramfs onto a tmpfs and exec's
// /init there; the new process resumes after this phase.
func (m *Machine) switchRoot(context.Context) error {
	if !onInitramfs() {
		m.log.Infof("switch-root: / is not the initramfs, staying on it")
		return nil
	}
	if rootfsIsTmpfs() {
		return bindRootfs()
	}
	start := bootClock()
	if err := moveToTmpfs(); err != nil {
		return err
	}
	state, err := json.Marshal(resumeState{
		Timeline: append(m.timeline, Step{Name: "switch-root", Essential: true}),
		Start:    start,
		Exec:     bootClock(),
	})
	if err != nil {
		return err
	}
	env := append(os.Environ(), envTimeline+"="+string(state))
	err = syscall.Exec("/init", os.Args, env)
	return fmt.Errorf("exec /init in the new root: %w", err)
}

type resumeState struct {
	Timeline []Step
	Start    time.Duration // boot clock when switch-root began
	Exec     time.Duration // boot clock at the exec
}

// resume picks up the timeline after the exec that follows switch_root;
// it reports whether there was one.
func (m *Machine) resume() bool {
	s := os.Getenv(envTimeline)
	if s == "" {
		return false
	}
	os.Unsetenv(envTimeline)
	var st resumeState
	if err := json.Unmarshal([]byte(s), &st); err != nil || len(st.Timeline) == 0 {
		m.log.Warnf("boot timeline lost across switch-root: %v", err)
		m.attachLogs()
		return true
	}
	m.timeline = st.Timeline
	// switch-root took from its start to now, the exec included.
	m.timeline[len(m.timeline)-1].Took = bootClock() - st.Start
	m.attachLogs()
	m.log.Debugf("exec after switch-root took %s", ms(bootClock()-st.Exec))
	return true
}

func (m *Machine) cgroups(context.Context) error {
	enabled, err := mountCgroups()
	if err != nil {
		return err
	}
	m.log.Debugf("cgroup v2 controllers: %s", strings.Join(enabled, " "))
	return nil
}

// emergency is where the boot stops when an essential phase fails: the
// console says what failed, and the machine stays up (PID 1 never exits)
// until it is shut down.
func (m *Machine) emergency(p *Phase, err error) {
	m.log.Errorf("emergency mode: essential phase %s failed: %v", p.Name, err)
	if m.log.debugOn() {
		m.debugDump()
	}
	m.printTimeline()
	m.log.Errorf("emergency mode: the boot stopped; ctrl-alt-del or SIGTERM will %s the machine", m.onSignal)
}

func (m *Machine) ready() {
	if m.log.debugOn() {
		m.debugDump()
	}
	m.printNetwork()
	m.printTimeline()
	m.runTestSwitches()
	m.writeBootRecord()
	m.isReady.Store(true)
	host, _ := os.Hostname()
	m.log.Infof("ready (hostname %s)", host)
}

func (m *Machine) printTimeline() {
	for _, l := range formatTimeline(m.timeline, bootClock()) {
		m.log.Infof("%s", l)
	}
}

// bootClock is the time since the kernel started (CLOCK_BOOTTIME, the
// clock of /proc/uptime).
func bootClock() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// readRelease reads a key=value file such as /etc/kurma/release.
func readRelease(path string) map[string]string {
	out := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}
