package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/config"
	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/apiserver"
	"github.com/kurmaos/kurma/containers/fetch"
	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/containers/network"
	"github.com/kurmaos/kurma/containers/pod"
	"github.com/kurmaos/kurma/containers/trust"
)

// Signals of PID 1 (kurma as init) that ask for a reboot or a poweroff, as
// systemd numbers them (the C library's SIGRTMIN is 34).
const (
	pid1Poweroff = syscall.Signal(34 + 4)
	pid1Reboot   = syscall.Signal(34 + 5)
)

type daemonFlags struct {
	stateDir, runDir, stageBinary string
	spares                        int
	socket, socketGroup           string
	configFile, configErrors      string
	bootRecord                    string
	kurmaOS                       bool
}

func (c *cli) daemonCmd() *cobra.Command {
	var f daemonFlags
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the pod runtime and its API (as root)",
		Long: `daemon runs the pod runtime and serves the kurma.v1 API on its socket
(and on the remote listener the configuration names).

SIGTERM or SIGINT stop the daemon and leave the pods running: the next
daemon on the same state directory takes them over. SIGPWR (the machine is
going down) stops every pod first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runDaemon(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stateDir, "state-dir", "/var/lib/kurma", "state directory (images/ and pods/ under it)")
	fl.StringVar(&f.runDir, "run-dir", "/run/kurma", "runtime state directory (a tmpfs; pods/ under it)")
	fl.StringVar(&f.stageBinary, "stage-binary", "", "binary re-executed as each pod's init (default: this one; kurma-stage is smaller)")
	fl.IntVar(&f.spares, "spares", 1, "pod inits kept started ahead for pods to come (0: none)")
	fl.StringVar(&f.socket, "socket", "", "the API's unix socket (default: api.socket of the configuration)")
	fl.StringVar(&f.socketGroup, "socket-group", "", "the socket's group (default: api.socket_group)")
	fl.StringVar(&f.configFile, "config", "", "a Kurma configuration file (over the built-in defaults)")
	fl.StringVar(&f.configErrors, "config-errors", "", "a file of configuration errors to report (one per line; PID 1 writes it)")
	fl.StringVar(&f.bootRecord, "boot-record", "", "PID 1's boot record, for info")
	fl.BoolVar(&f.kurmaOS, "kurma-os", false, "this daemon runs on the Kurma OS: reboot and poweroff ask PID 1")
	return cmd
}

// runDaemon runs the pod runtime until ctx ends. Pods keep running when
// it stops; the next daemon on the same state directory takes them over.
func (c *cli) runDaemon(ctx context.Context, f daemonFlags) error {
	// On the Kurma OS, PID 1 writes the lines to the console and the
	// boot log with its own prefix.
	logger := log.New(c.stderr, "", 0)
	if !f.kurmaOS {
		logger = log.New(c.stderr, "kurma: ", log.LstdFlags)
	}
	eff, cfgErrs := loadDaemonConfig(f.configFile, f.configErrors)
	for _, e := range cfgErrs {
		logger.Printf("config: %s", e)
	}
	cfg := &eff.Config
	if f.socket == "" {
		f.socket = cfg.API.Socket
	}
	if f.socketGroup == "" {
		f.socketGroup = cfg.API.SocketGroup
	}

	fetcher, err := newFetcher(cfg, filepath.Join(f.runDir, "trust"), logger)
	if err != nil {
		return err
	}
	var m *pod.Manager
	store, err := image.Open(filepath.Join(f.stateDir, "images"), image.Options{
		Limits:  aci.Limits{MaxImageBytes: int64(cfg.Images.Limits.Unpacked)},
		InUse:   func(ctx context.Context) ([]string, error) { return m.ImagesInUse(ctx) },
		Fetcher: fetcher,
		Logf:    logger.Printf,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	for _, dir := range cfg.Images.OfflineDirs {
		start := time.Now()
		imgs, err := store.ImportDir(ctx, dir)
		if err != nil {
			logger.Printf("images: offline directory %s: %v", dir, err)
		}
		if len(imgs) > 0 {
			logger.Printf("images: %d imported from %s in %d ms", len(imgs), dir, time.Since(start).Milliseconds())
		}
	}
	if f.spares <= 0 {
		f.spares = -1 // pod.Options: negative is none
	}
	podNet := podNetwork(cfg, f.runDir, logger)
	opts := pod.Options{
		Dir:         filepath.Join(f.stateDir, "pods"),
		RunDir:      filepath.Join(f.runDir, "pods"),
		Images:      store,
		StageBinary: f.stageBinary,
		Spares:      f.spares,
		Logf:        logger.Printf,
		// host/api-access binds this socket into pods.
		APISocket:      f.socket,
		ReservedCPU:    int64(max(cfg.Pods.Reserved.CPUMillicores, 0)),
		ReservedMemory: max(int64(cfg.Pods.Reserved.Memory), 0),
		// Checked by the configuration: an invalid pool is none.
		UserNamespaces: pod.IDPool{FirstID: uint32(cfg.Pods.UserNamespaces.FirstID), Ranges: cfg.Pods.UserNamespaces.Ranges},
	}
	if podNet != nil {
		opts.Network = podNet
	}
	m, err = pod.Open(ctx, opts)
	if err != nil {
		return err
	}
	defer m.Close()

	events := apiserver.NewEvents()
	insecure := apiserver.Insecure{SkipSignature: cfg.Images.Insecure.SkipSignature, AllowHTTP: cfg.Images.Insecure.AllowHTTP}
	pods := &apiserver.PodService{Pods: m, Images: store, Events: events}
	if podNet != nil {
		pods.Addresses = podNet.Addresses
	}
	pods.Fetch = func(ctx context.Context, ref string) (*image.Image, error) {
		return store.Fetch(ctx, ref, fetch.Options{})
	}
	srv := &apiserver.Server{
		Version:  version,
		Images:   store,
		Pods:     pods,
		Insecure: insecure,
		Events:   events,
		BootFile: f.bootRecord,
		Logf:     logger.Printf,
		Capacity: func() *kurmav1.Capacity {
			c := m.Capacity()
			return &kurmav1.Capacity{CpuTotal: c.CPUTotal, CpuAllocatable: c.CPUAllocatable, CpuRequested: c.CPURequested,
				MemoryTotal: c.MemoryTotal, MemoryAllocatable: c.MemoryAllocatable, MemoryRequested: c.MemoryRequested}
		},
		PodCounts: func() (total, running int) {
			for _, p := range m.List() {
				total++
				if p.Status().State == pod.Running {
					running++
				}
			}
			return total, running
		},
		Config: func() (string, []string, error) {
			var b bytes.Buffer
			err := eff.Show(&b)
			return b.String(), cfgErrs, err
		},
	}
	if f.kurmaOS {
		srv.Power = func(ctx context.Context, action string) error {
			sig := pid1Poweroff
			if action == "reboot" {
				sig = pid1Reboot
			}
			return unix.Kill(1, sig)
		}
	}
	listeners, err := listen(cfg, f.socket, f.socketGroup)
	if err != nil {
		return err
	}
	// SIGPWR: the machine is going down; stop the pods, then exit.
	pwr := make(chan os.Signal, 1)
	signal.Notify(pwr, unix.SIGPWR)
	defer signal.Stop(pwr)
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-pwr:
			logger.Printf("the machine is going down: stopping every pod")
			stopAll(context.Background(), m, logger)
			stop()
		case <-serveCtx.Done():
		}
	}()
	addrs := make([]string, len(listeners))
	for i, l := range listeners {
		addrs[i] = l.Addr().String()
	}
	logger.Printf("daemon ready: API on %s; state in %s; %d pods, %d images",
		strings.Join(addrs, " and "), f.stateDir, len(m.List()), len(store.List()))
	return srv.Serve(serveCtx, listeners...)
}

// podNetwork makes the pods' network of the configuration, or nil (pods
// then have loopback only) when it is off or cannot work here.
func podNetwork(cfg *config.Config, runDir string, logger *log.Logger) *network.CNI {
	pn := cfg.Pods.Network
	if !pn.Enabled {
		logger.Printf("pods' network: off (pods.network.enabled); pods have loopback only")
		return nil
	}
	n, err := network.New(network.Options{PluginDir: pn.PluginDir, Bridge: pn.Bridge, Subnet: pn.Subnet,
		MTU: pn.MTU, Masquerade: pn.Masquerade, StateDir: filepath.Join(runDir, "cni")})
	if err != nil {
		logger.Printf("pods' network: %v; pods have loopback only", err)
		return nil
	}
	return n
}

// stopAll stops every running pod, each with its grace period, at once.
func stopAll(ctx context.Context, m *pod.Manager, logger *log.Logger) {
	done := make(chan struct{})
	n := 0
	for _, p := range m.List() {
		if st := p.Status().State; st != pod.Running && st != pod.Stopping {
			continue
		}
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			if err := p.Stop(ctx, 0); err != nil {
				logger.Printf("stop pod %s: %v", p.UUID(), err)
			}
		}()
	}
	for ; n > 0; n-- {
		<-done
	}
}

// listen opens the local socket and, when configured, the remote
// listener.
func listen(cfg *config.Config, socket, group string) ([]net.Listener, error) {
	local, err := apiserver.ListenUnix(socket, group)
	if err != nil {
		return nil, err
	}
	ls := []net.Listener{local}
	if r := cfg.API.Remote; r.Address != "" {
		remote, err := apiserver.ListenTLS(r.Address, apiserver.TLSFiles{Cert: r.TLS.Cert, Key: r.TLS.Key, ClientCA: r.TLS.CA})
		if err != nil {
			local.Close()
			return nil, fmt.Errorf("remote API on %s: %w", r.Address, err)
		}
		ls = append(ls, remote)
	}
	return ls, nil
}

// loadDaemonConfig reads the configuration file over the defaults, and
// the errors PID 1 found (the file it writes is already merged).
func loadDaemonConfig(file, errorsFile string) (*config.Effective, []string) {
	var layers []*config.Layer
	var msgs []string
	layers = append(layers, config.Defaults())
	if file != "" {
		l, errs := config.ReadFile("file", file)
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		layers = append(layers, l)
	}
	eff, errs := config.Merge(layers...)
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	if errorsFile != "" {
		if f, err := os.Open(errorsFile); err == nil {
			s := bufio.NewScanner(f)
			for s.Scan() {
				if line := strings.TrimSpace(s.Text()); line != "" {
					msgs = append(msgs, line)
				}
			}
			f.Close()
		}
	}
	sort.Strings(msgs)
	return eff, msgs
}

// newFetcher makes the image fetcher of the configuration: its
// whitelist, proxy, limits and trusted keys (copied into a trust store
// under dir, made fresh at each start).
func newFetcher(cfg *config.Config, dir string, logger *log.Logger) (*fetch.Fetcher, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	ts, err := trust.Open(dir)
	if err != nil {
		return nil, err
	}
	for prefix, files := range cfg.Images.TrustedKeys {
		for _, file := range files {
			armored, err := os.ReadFile(file)
			if err == nil {
				_, err = ts.Add(prefix, armored)
			}
			if err != nil {
				logger.Printf("images: trusted key %s for %s: %v", file, prefix, err)
			}
		}
	}
	fc := fetch.Config{
		Allow:  fetch.Whitelist{Names: cfg.Images.Allow.Names, Hosts: cfg.Images.Allow.Hosts},
		Trust:  ts,
		Limits: aci.Limits{MaxImageBytes: int64(cfg.Images.Limits.Download)},
	}
	if len(fc.Allow.Names) == 0 && len(fc.Allow.Hosts) == 0 {
		fc.Allow = fetch.Whitelist{Names: []string{"*"}, Hosts: []string{"*"}} // no whitelist: every source
	}
	if p := firstNonEmpty(cfg.Network.Proxy.HTTPS, cfg.Network.Proxy.HTTP, os.Getenv("HTTPS_PROXY"), os.Getenv("HTTP_PROXY")); p != "" {
		u, err := url.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("proxy %q: %w", p, err)
		}
		fc.Proxy = u
	}
	return fetch.New(fc)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
