package boot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The container runtime runs as its own process, `kurma daemon`, a child
// of PID 1: a crash of the runtime is not a kernel panic, PID 1 restarts
// it, and it finds its pods again from their state on disk. PID 1 hands it
// the effective configuration and the boot record in files under /run/kurma.
const (
	runtimeBinary   = "/bin/kurma"
	stageBinary     = "/bin/kurma-stage"
	runtimeState    = "/var/lib/kurma"
	effectiveConfig = "/run/kurma/config.yaml"   // the effective configuration, annotated with origins
	configErrors    = "/run/kurma/config.errors" // its errors, one per line
	bootRecordFile  = "/run/kurma/boot.json"     // the boot timeline
)

// runtimeReadyTimeout bounds the wait for the daemon's socket.
const runtimeReadyTimeout = 20 * time.Second

type daemon struct {
	proc     atomic.Pointer[os.Process]
	stopping atomic.Bool
	exited   chan struct{} // closed when the supervisor stops for good
}

// runtime starts the container runtime and its API, and waits until the
// API answers on its socket.
func (m *Machine) runtime(ctx context.Context) error {
	if _, err := os.Stat(runtimeBinary); err != nil {
		return fmt.Errorf("this image has no runtime (%s): %w", runtimeBinary, err)
	}
	if err := m.writeRuntimeConfig(); err != nil {
		return err
	}
	// The pods' network needs its modules before the first pod; they
	// load while the daemon starts.
	modules := make(chan error, 1)
	go func() { modules <- m.loadPodNetworkModules() }()
	d := &daemon{exited: make(chan struct{})}
	m.daemon = d
	m.shutdownHooks = append(m.shutdownHooks, m.stopRuntime)
	go m.superviseRuntime(d)
	socket := m.cfg.API.Socket
	deadline := time.Now().Add(runtimeReadyTimeout)
	for {
		c, err := net.Dial("unix", socket)
		if err == nil {
			c.Close()
			if err := <-modules; err != nil {
				m.log.Warnf("runtime: pods' network: %v", err)
			}
			m.log.Infof("runtime: API on %s", socket)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the runtime's API did not answer on %s within %s: %w", socket, runtimeReadyTimeout, err)
		}
		select {
		case <-d.exited:
			return fmt.Errorf("the runtime stopped before its API answered")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// podNetworkModules are what the pods' network (a bridge, veth pairs,
// nftables masquerade through iptables-nft) needs from the kernel.
var podNetworkModules = []string{"bridge", "veth", "nf_tables", "nft_chain_nat", "nft_masq", "nft_compat", "xt_comment", "xt_MASQUERADE"}

func (m *Machine) loadPodNetworkModules() error {
	if !m.cfg.Pods.Network.Enabled || m.modLoader == nil {
		return nil
	}
	var failed []string
	for _, r := range m.modLoader.LoadAll(podNetworkModules) {
		if r.Err != nil && !r.Alternative {
			failed = append(failed, r.Err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("modules: %s", strings.Join(failed, "; "))
	}
	return nil
}

// writeRuntimeConfig writes the effective configuration and its errors
// where the daemon reads them.
func (m *Machine) writeRuntimeConfig() error {
	var b bytes.Buffer
	if err := m.eff.Show(&b); err != nil {
		return fmt.Errorf("render the configuration: %w", err)
	}
	if err := writeFileAtomic(effectiveConfig, b.Bytes(), 0o600); err != nil {
		return err
	}
	var errs bytes.Buffer
	for msg := range m.cfgShown {
		errs.WriteString(msg + "\n")
	}
	return writeFileAtomic(configErrors, errs.Bytes(), 0o600)
}

// superviseRuntime runs the daemon and starts it again when it exits,
// waiting longer after each quick exit (1 s doubling to 30 s), until
// shutdown.
func (m *Machine) superviseRuntime(d *daemon) {
	defer close(d.exited)
	backoff := time.Second
	for !d.stopping.Load() {
		started := time.Now()
		ws, err := m.runDaemon(d)
		if d.stopping.Load() {
			return
		}
		if err != nil {
			m.log.Errorf("runtime: %v", err)
		} else {
			m.log.Errorf("runtime: the daemon exited (%s); starting it again in %s", describeWait(ws), backoff)
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second // it ran well for a while
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 30*time.Second)
	}
}

// runDaemon starts the daemon once and waits for it; its output becomes
// boot log lines.
func (m *Machine) runDaemon(d *daemon) (unix.WaitStatus, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	args := []string{"daemon", "--kurma-os", "--config", effectiveConfig, "--config-errors", configErrors,
		"--boot-record", bootRecordFile, "--state-dir", runtimeState}
	if _, err := os.Stat(stageBinary); err == nil {
		args = append(args, "--stage-binary", stageBinary) // a pod's init costs less memory
	}
	cmd := exec.Command(runtimeBinary, args...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = append(os.Environ(), "KURMA_DAEMON_OF_PID1=1")
	done, err := m.reaper.Start(cmd)
	w.Close() // the child has its copy
	if err != nil {
		r.Close()
		return 0, fmt.Errorf("start %s: %w", runtimeBinary, err)
	}
	d.proc.Store(cmd.Process)
	go func() {
		defer r.Close()
		s := bufio.NewScanner(r)
		for s.Scan() {
			m.log.Infof("runtime: %s", s.Text())
		}
	}()
	ws := <-done
	_ = cmd.Process.Release() // reaped already
	d.proc.Store(nil)
	return ws, nil
}

// stopRuntime is the shutdown hook: it tells the daemon the machine is
// going down (SIGPWR: stop every pod, then exit) and waits for it, up to
// the grace period and a bit.
func (m *Machine) stopRuntime() {
	d := m.daemon
	if d == nil {
		return
	}
	d.stopping.Store(true)
	if p := d.proc.Load(); p != nil {
		m.log.Infof("shutdown: stopping the pods")
		_ = p.Signal(unix.SIGPWR) // it may have exited meanwhile
	}
	select {
	case <-d.exited:
	case <-time.After(m.gracePeriod + 5*time.Second):
		m.log.Warnf("shutdown: the runtime did not stop its pods in time")
	}
}

// writeBootRecord writes the timeline for the API's Info.
func (m *Machine) writeBootRecord() {
	type phase struct {
		Name      string `json:"name"`
		Ms        int64  `json:"ms"`
		Essential bool   `json:"essential"`
		Error     string `json:"error,omitempty"`
	}
	rec := struct {
		Phases  []phase `json:"phases"`
		TotalMs int64   `json:"total_ms"`
	}{TotalMs: bootClock().Milliseconds()}
	for _, s := range m.timeline {
		rec.Phases = append(rec.Phases, phase{s.Name, s.Took.Milliseconds(), s.Essential, s.Err})
	}
	data, err := json.Marshal(rec)
	if err == nil {
		err = writeFileAtomic(bootRecordFile, data, 0o644)
	}
	if err != nil {
		m.log.Warnf("boot record: %v", err)
	}
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
