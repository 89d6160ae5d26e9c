package stage

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Verb is the hidden argument of the kurma binary that runs Main.
const Verb = "stage-init"

// MetadataPort is the TCP port of the metadata service on 127.0.0.1 in a
// pod's own network namespace.
const MetadataPort = 18112

// Config is everything the init needs to run a pod. The daemon resolves
// images, volumes and environments; the init resolves what only makes
// sense inside an app's root (users, groups, executables, directories).
type Config struct {
	UUID     string `json:"uuid"`
	Hostname string `json:"hostname"`
	// Dir is the pod's directory on disk and RunDir its runtime
	// directory, on a tmpfs where the host has one (see the layout).
	Dir    string      `json:"dir"`
	RunDir string      `json:"runDir"`
	Apps   []AppConfig `json:"apps"`
	// HostNetwork leaves the pod in the host's network namespace; no
	// loopback setup and no metadata listener are made then.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// StopOnFailure ends the pod as soon as an app exits with a non-zero
	// status (the other apps are stopped); otherwise the pod ends when
	// every app has exited.
	StopOnFailure bool `json:"stopOnFailure,omitempty"`
	// StopGrace is how long apps have between SIGTERM and SIGKILL when the
	// pod ends because of StopOnFailure or a SIGTERM sent to the init.
	StopGrace time.Duration `json:"stopGrace"`
	// LogMaxBytes bounds each app's log (current and previous file).
	LogMaxBytes int64 `json:"logMaxBytes"`
	// Sysctls are written before the apps start ("net.ipv4.ip_forward":
	// /proc/sys/net/ipv4/ip_forward), in the pod's own namespaces.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// UserNS is the pod's user namespace, whose IDs its apps' users,
	// groups and files are in; nil: the host's.
	UserNS *IDMap `json:"userNS,omitempty"`
}

// IDMap maps the IDs 0 to Size-1 of a pod's user namespace to HostID to
// HostID+Size-1 on the host, for users and groups alike.
type IDMap struct {
	HostID uint32 `json:"hostID"`
	Size   uint32 `json:"size"`
}

// Contains reports whether id (inside) is mapped.
func (m *IDMap) Contains(id int) bool { return id >= 0 && uint64(id) < uint64(m.Size) }

// Host is the host's ID of id (inside), which must be mapped.
func (m *IDMap) Host(id int) int { return int(m.HostID) + id }

// Inside is the ID inside of the host's id, and whether it is mapped.
func (m *IDMap) Inside(hostID int) (int, bool) {
	id := hostID - int(m.HostID)
	return id, m.Contains(id)
}

// String is the content of /proc/PID/uid_map (and gid_map).
func (m *IDMap) String() string { return fmt.Sprintf("0 %d %d\n", m.HostID, m.Size) }

// AppConfig is one app of the pod.
type AppConfig struct {
	Name string `json:"name"`
	// Lowers are the overlayfs lower directories of the app's root
	// filesystem, topmost first.
	Lowers         []string `json:"lowers"`
	ReadOnlyRootFS bool     `json:"readOnlyRootFS,omitempty"`
	Exec           []string `json:"exec"`
	// Env is the complete environment, NAME=value.
	Env               []string   `json:"env"`
	User              string     `json:"user"`
	Group             string     `json:"group"`
	SupplementaryGIDs []int      `json:"supplementaryGIDs,omitempty"`
	WorkingDirectory  string     `json:"workingDirectory,omitempty"`
	PreStart          [][]string `json:"preStart,omitempty"`
	PostStop          [][]string `json:"postStop,omitempty"`
	Mounts            []Mount    `json:"mounts,omitempty"`
	// Isolation applies to the app, its handlers and entered commands.
	Isolation Isolation `json:"isolation"`
	Cgroup    AppCgroup `json:"cgroup,omitzero"`
	// Privileged gives the app the host's /dev, a /proc without masked
	// or read-only paths and a writable /sys (host/privileged).
	Privileged bool `json:"privileged,omitempty"`
	// APISocket is the daemon's API socket, bound at APISocketTarget in
	// the app (host/api-access).
	APISocket string `json:"apiSocket,omitempty"`
	// Interactive gives the app a terminal of the pod's devpts as its
	// stdin, stdout and stderr, held by the init, which clients attach
	// to (OpAttach); its output goes to the app's log too.
	Interactive bool `json:"interactive,omitempty"`
	// TTY leaves the interactive app's terminal as terminals are (echo,
	// \r\n, ^C): for clients on a terminal. Without it, the terminal
	// neither echoes nor translates the app's output: for clients that
	// read and write data.
	TTY bool `json:"tty,omitempty"`
}

// APISocketTarget is where host/api-access puts the API socket in an
// app: the kurma command's default socket.
const APISocketTarget = "/run/kurma/kurma.sock"

// Mount is a bind mount of a host directory or file into an app.
type Mount struct {
	// Source is a host path the daemon checked (it exists, no symlink).
	Source string `json:"source"`
	// Target is the path inside the app's root; missing directories are
	// created (0755, root), resolved inside the root.
	Target    string `json:"target"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
}

// Message is a message on the init's fd 3.
type Message struct {
	Type string `json:"type"`
	// OwnNetwork says, with MsgPrepare, that the pod has a network
	// namespace of its own to set up; Dir is the init's runtime
	// directory.
	OwnNetwork bool   `json:"ownNetwork,omitempty"`
	Dir        string `json:"dir,omitempty"`
	// For a pod in a user namespace, MsgPrepare has: the pod's IDMap;
	// Namespaces, the kinds of the namespaces the message's descriptors
	// are, in order ("user", "ipc", and "net", "uts" unless the pod
	// uses the host's), made by the daemon in the pod's user namespace
	// (see NewNamespaces), which every process of the apps joins; and
	// Layers, the image store's directory, to mount with the pod's ID
	// mapping (MOUNT_ATTR_IDMAP) at LayersDir. MsgPrepared says with
	// IDMapped whether that worked (Error says why not).
	IDMap      *IDMap         `json:"idMap,omitempty"`
	Namespaces []string       `json:"namespaces,omitempty"`
	Layers     string         `json:"layers,omitempty"`
	IDMapped   bool           `json:"idMapped,omitempty"`
	Config     *Config        `json:"config,omitempty"`
	Error      string         `json:"error,omitempty"`
	Pids       map[string]int `json:"pids,omitempty"`
}

// Message types, in the order of the protocol.
const (
	MsgPrepare    = "prepare"
	MsgPrepared   = "prepared"
	MsgConfig     = "config"
	MsgNamespaces = "namespaces"
	MsgStart      = "start"
	MsgRunning    = "running"
	MsgFailed     = "failed"
	MsgEnded      = "ended"
)

// Request is a request on the control socket.
type Request struct {
	Op    string        `json:"op"`
	Grace time.Duration `json:"grace,omitempty"`
	Enter *EnterRequest `json:"enter,omitempty"`
	// App is the interactive app to attach to (OpAttach).
	App string `json:"app,omitempty"`
}

// Control operations.
const (
	OpStop     = "stop"
	OpEnter    = "enter"
	OpListener = "listener"
	// OpAttach attaches to an interactive app's terminal: the request
	// carries one descriptor, where the terminal's output goes (the
	// output from the app's start comes first, for the first attach);
	// the reply carries the terminal's master, for input and sizes; the
	// last reply is the app's exit.
	OpAttach = "attach"
)

// EnterRequest runs a command in a running app: its mount namespace and
// root, the pod's other namespaces, its user and groups and environment.
type EnterRequest struct {
	App  string   `json:"app"`
	Args []string `json:"args"`
	// Env is added to the app's environment (NAME=value).
	Env []string `json:"env,omitempty"`
	// TTY allocates a terminal in the pod's devpts; its master comes back
	// with the reply carrying the pid. Without it, the request carries
	// three descriptors: stdin, stdout, stderr.
	TTY bool `json:"tty,omitempty"`
	// Rows and Cols are the terminal's size from its start (0: unset).
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

// Reply answers a Request.
type Reply struct {
	Error string `json:"error,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	// Exit is set in the last reply to an enter request.
	Exit *ExitStatus `json:"exit,omitempty"`
}

// ExitStatus is how a process ended: a code, or a signal.
type ExitStatus struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
}

func exitStatus(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal().String()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// Pod phases in status.json, as the init sees them.
const (
	PhaseStarting = "starting"
	PhaseRunning  = "running"
	PhaseStopping = "stopping"
	PhaseExited   = "exited"  // every app ended on its own
	PhaseStopped  = "stopped" // ended by a stop request
	PhaseFailed   = "failed"  // could not start (see Error)
)

// App states in status.json.
const (
	AppPending = "pending"
	AppRunning = "running"
	AppExited  = "exited"
)

// Status is the content of status.json, written by the init.
type Status struct {
	Phase string      `json:"phase"`
	Error string      `json:"error,omitempty"`
	Apps  []AppStatus `json:"apps"`
}

// AppStatus is the state of one app.
type AppStatus struct {
	Name      string      `json:"name"`
	State     string      `json:"state"`
	Pid       int         `json:"pid,omitempty"`
	StartedAt time.Time   `json:"startedAt,omitzero"`
	ExitedAt  time.Time   `json:"exitedAt,omitzero"`
	Exit      *ExitStatus `json:"exit,omitempty"`
	// OOMKilled says the kernel's OOM killer killed the app (its memory
	// limit, or the pod's, was reached).
	OOMKilled bool   `json:"oomKilled,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Ended reports whether the phase is final.
func (s *Status) Ended() bool {
	switch s.Phase {
	case PhaseExited, PhaseStopped, PhaseFailed:
		return true
	}
	return false
}

// The layout of a pod, shared by the daemon and the init. On disk, what
// must outlive a reboot or may be large:
//
//	DIR/APP.upper/, DIR/APP.work/   overlayfs upper and work directories
//	DIR/APP.log[.1]                 stdout and stderr of the app and its handlers
//
// In the runtime directory (a tmpfs: state written often, cheaply):
//
//	RUN/status.json                 written by the init
//	RUN/control                     the init's control socket
//	RUN/devpts/, RUN/shm/           the pod's devpts and /dev/shm (mounted by the init)
//	RUN/system/{dev,proc,sys}/      the apps' /dev, /proc and /sys (mounted by the init)
//	RUN/APP.rootfs/                 mount point of the app's root
//	RUN/layers/                     the image store, ID-mapped (a pod in a user namespace)
func StatusPath(run string) string    { return filepath.Join(run, "status.json") }
func UpperDir(dir, app string) string { return filepath.Join(dir, app+".upper") }
func WorkDir(dir, app string) string  { return filepath.Join(dir, app+".work") }
func RootDir(run, app string) string  { return filepath.Join(run, app+".rootfs") }
func LogPath(dir, app string) string  { return filepath.Join(dir, app+".log") }
func LayersDir(run string) string     { return filepath.Join(run, "layers") }

// ReadStatus reads status.json of the pod whose runtime directory is run.
func ReadStatus(run string) (*Status, error) {
	data, err := os.ReadFile(StatusPath(run))
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", StatusPath(run), err)
	}
	return &s, nil
}

// maxMessage bounds one message of the protocol, maxFDs the
// descriptors it carries (a pod's namespaces are the most).
const (
	maxMessage = 512 << 10
	maxFDs     = 8
)

var errTruncated = errors.New("stage protocol: message too large")

// Send writes v as one message, with fds attached.
func Send(c *net.UnixConn, v any, fds ...int) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(data) > maxMessage {
		return errTruncated
	}
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	_, _, err = c.WriteMsgUnix(data, oob, nil)
	return err
}

// Recv reads one message into v and returns the descriptors it carried
// (the caller owns them). It peeks at the size of the message first, so
// the buffer is no larger than the message: the in-pod init must stay
// small, and its garbage too.
func Recv(c *net.UnixConn, v any) ([]*os.File, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	size := 0
	var perr error
	err = raw.Read(func(fd uintptr) bool {
		size, _, perr = syscall.Recvfrom(int(fd), nil, syscall.MSG_PEEK|syscall.MSG_TRUNC)
		return perr != syscall.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, perr
	}
	if size > maxMessage {
		return nil, errTruncated
	}
	return recv(c, v, max(size, 1))
}

func recv(c *net.UnixConn, v any, size int) ([]*os.File, error) {
	buf := make([]byte, size)
	oob := make([]byte, syscall.CmsgSpace(maxFDs*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			fds, err := syscall.ParseUnixRights(&m)
			if err != nil {
				return nil, err
			}
			for _, fd := range fds {
				syscall.CloseOnExec(fd)
				files = append(files, os.NewFile(uintptr(fd), "received"))
			}
		}
	}
	if flags&(syscall.MSG_TRUNC|syscall.MSG_CTRUNC) != 0 {
		closeAll(files)
		return nil, errTruncated
	}
	if n == 0 {
		closeAll(files)
		return nil, errEOF
	}
	if err := json.Unmarshal(buf[:n], v); err != nil {
		closeAll(files)
		return nil, fmt.Errorf("stage protocol: %w", err)
	}
	return files, nil
}

var errEOF = errors.New("stage protocol: connection closed")

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// sysfd is the descriptor of f, without the side effect of f.Fd(), which
// makes it blocking: a socket shared with the daemon must stay
// non-blocking, or the daemon's accept could block for good.
func sysfd(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(s uintptr) { fd = int(s) }) // fails only for a closed file
	}
	return fd
}
