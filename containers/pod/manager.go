package pod

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kurmaos/kurma/containers/cgroup"
	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/containers/metadata"
)

// Options configure a Manager.
type Options struct {
	// Dir holds what pods keep on disk (/var/lib/kurma/pods): their
	// writable layers, empty volumes and logs.
	Dir string
	// RunDir holds the pods' runtime state (/run/kurma/pods, the
	// default): records, statuses, control sockets, mount points. It
	// should be on a tmpfs: the state is written (temporary file, sync,
	// rename) at every change, and pods do not outlive the machine.
	RunDir string
	// Images is the image store the pods' images come from. Open it with
	// image.Options.InUse calling the manager's ImagesInUse.
	Images *image.Store
	// StageBinary is the kurma binary re-executed as each pod's init;
	// "" is /proc/self/exe.
	StageBinary string
	// Cgroups is where pods' cgroups are made; nil detects it with the
	// parent group "kurma".
	Cgroups *cgroup.Hierarchy
	// Network sets up and tears down pods' networks; nil only brings up
	// loopback (which the in-pod init does for every pod anyway).
	Network Network
	// MetadataHostAddr is where pods on the host's network reach the
	// metadata service ("127.0.0.1:0": a free port of the host's
	// loopback, the default).
	MetadataHostAddr string
	// StopGrace is the default time between SIGTERM and SIGKILL (10s).
	StopGrace time.Duration
	// LogMaxBytes bounds each app's log (8 MiB by default).
	LogMaxBytes int64
	// Spares is how many inits are kept started ahead, in new
	// namespaces, for pods to come (see claim); 0 is 1, negative none.
	Spares int
	// ReservedCPU (millicores) and ReservedMemory (bytes) are kept from
	// pods: what pods may request (allocatable) is the machine's total
	// less them. A pod whose requests do not fit is refused.
	ReservedCPU, ReservedMemory int64
	// APISocket is the daemon's API socket, bound into the apps of pods
	// with host/api-access.
	APISocket string
	// Logf reports what the manager repairs or cannot do on its own.
	Logf func(format string, args ...any)
}

// Network is the seam where pod networking (CNI) plugs in: Setup runs
// after the pod's network namespace exists, with loopback up, and before
// any app starts; Teardown runs when the pod is removed (its namespace
// may be gone by then). Pods on the host's network skip both.
type Network interface {
	Setup(ctx context.Context, n NetNS) error
	Teardown(ctx context.Context, n NetNS) error
}

// NetNS names a pod's network namespace.
type NetNS struct {
	PodUUID string
	// Path is /proc/PID/ns/net of the pod's init (empty at Teardown if
	// the pod has ended).
	Path string
}

// Manager runs pods. Its methods are safe for concurrent use; each Pod
// has its own lock.
type Manager struct {
	opts Options
	cg   *cgroup.Hierarchy
	md   *metadata.Service

	mu       sync.Mutex // guards pods, hostAddr, closed and the spares
	pods     map[string]*Pod
	cpuTotal int64 // millicores
	memTotal int64 // bytes
	hostAddr string
	closed   bool
	spares   []*podInit
	spawning int   // spares being started
	spareErr error // why no more spares are started
	bg       sync.WaitGroup
}

// Open opens the pods directory and takes over the pods in it: running
// ones are followed again, those that ended while no daemon ran get
// their final state.
func Open(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Dir == "" || opts.Images == nil {
		return nil, errors.New("pod manager: Dir and Images are required")
	}
	if opts.RunDir == "" {
		opts.RunDir = "/run/kurma/pods"
	}
	if opts.StageBinary == "" {
		opts.StageBinary = "/proc/self/exe"
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = 10 * time.Second
	}
	if opts.LogMaxBytes == 0 {
		opts.LogMaxBytes = 8 << 20
	}
	switch {
	case opts.Spares == 0:
		opts.Spares = 1
	case opts.Spares < 0:
		opts.Spares = 0
	}
	if opts.LogMaxBytes < 4096 {
		return nil, errors.New("pod manager: LogMaxBytes below 4096")
	}
	if opts.MetadataHostAddr == "" {
		opts.MetadataHostAddr = "127.0.0.1:0"
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	for _, d := range []string{opts.Dir, opts.RunDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("pod manager: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("pod manager: %w", err)
		}
	}
	cg := opts.Cgroups
	if cg == nil {
		var err error
		if cg, err = cgroup.Detect("kurma"); err != nil {
			return nil, fmt.Errorf("pod manager: %w", err)
		}
	}
	key, err := metadata.LoadKey(filepath.Join(opts.Dir, "metadata.key"))
	if err != nil {
		return nil, fmt.Errorf("pod manager: %w", err)
	}
	md, err := metadata.New(key)
	if err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, cg: cg, md: md, pods: map[string]*Pod{}}
	m.cpuTotal, m.memTotal = hostTotals()
	if err := m.recover(ctx); err != nil {
		md.Close()
		return nil, err
	}
	m.mu.Lock()
	m.refillLocked()
	m.mu.Unlock()
	return m, nil
}

// Close stops serving the metadata service and ends the spare inits.
// Pods keep running; a new Manager on the same directories takes them
// over.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.closeSpares()
	m.md.Close()
	return nil
}

// Cgroups is the hierarchy the manager puts pods in.
func (m *Manager) Cgroups() *cgroup.Hierarchy { return m.cg }

func (m *Manager) podDir(uuid string) string { return filepath.Join(m.opts.Dir, uuid) }
func (m *Manager) runDir(uuid string) string { return filepath.Join(m.opts.RunDir, uuid) }

// ErrNotFound is returned for a pod reference that matches no pod.
var ErrNotFound = errors.New("pod not found")

// ErrAmbiguous is returned for a UUID prefix that matches several pods.
var ErrAmbiguous = errors.New("pod reference matches more than one pod")

// Get finds a pod by name, UUID or unique UUID prefix.
func (m *Manager) Get(ref string) (*Pod, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pods[ref]; ok {
		return p, nil
	}
	for _, p := range m.pods {
		if p.name != "" && p.name == ref {
			return p, nil
		}
	}
	var matches []string
	for id := range m.pods {
		if ref != "" && strings.HasPrefix(id, ref) {
			matches = append(matches, id)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	case 1:
		return m.pods[matches[0]], nil
	}
	sort.Strings(matches)
	candidates := make([]string, len(matches))
	for i, id := range matches {
		candidates[i] = id
		if n := m.pods[id].name; n != "" {
			candidates[i] += " (" + n + ")"
		}
	}
	return nil, fmt.Errorf("%w: %s is the start of %s", ErrAmbiguous, ref, strings.Join(candidates, ", "))
}

// List returns every pod, oldest first.
func (m *Manager) List() []*Pod {
	m.mu.Lock()
	pods := make([]*Pod, 0, len(m.pods))
	for _, p := range m.pods {
		pods = append(pods, p)
	}
	m.mu.Unlock()
	sort.Slice(pods, func(i, j int) bool {
		a, b := pods[i].createdAt, pods[j].createdAt
		if !a.Equal(b) {
			return a.Before(b)
		}
		return pods[i].uuid < pods[j].uuid
	})
	return pods
}

// ImagesInUse reports every image the pods' root filesystems are made
// of, for image.Options.InUse. A pod is counted from before its layers
// are stacked until it is removed.
func (m *Manager) ImagesInUse(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	pods := make([]*Pod, 0, len(m.pods))
	for _, p := range m.pods {
		pods = append(pods, p)
	}
	m.mu.Unlock()
	seen := map[string]bool{}
	var ids []string
	for _, p := range pods {
		for _, id := range p.layers() {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// hostMetadataURL starts, once, the metadata listener on the host's
// loopback for pods on the host's network, and returns its address.
func (m *Manager) hostMetadataAddr() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hostAddr != "" {
		return m.hostAddr, nil
	}
	l, err := net.Listen("tcp", m.opts.MetadataHostAddr)
	if err != nil {
		return "", fmt.Errorf("metadata listener: %w", err)
	}
	m.md.Serve(l, "")
	m.hostAddr = l.Addr().String()
	return m.hostAddr, nil
}

var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
