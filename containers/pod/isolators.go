package pod

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/appc/spec/schema/types"
	"github.com/appc/spec/schema/types/resource"
	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/cgroup"
	"github.com/kurmaos/kurma/containers/seccomp"
	"github.com/kurmaos/kurma/containers/stage"
)

// Isolators Kurma adds to the appc spec's (see docs/pods.md).
const (
	// PrivilegedIsolator (value true) gives the pod's apps, or one app,
	// every capability, the host's devices, an unmasked /proc, a
	// writable /sys and no default seccomp filter; only callers allowed
	// to (CreateOptions.AllowPrivileged) may ask for it.
	PrivilegedIsolator = "host/privileged"
	// APIAccessIsolator (value true) binds the daemon's API socket at
	// /run/kurma/kurma.sock in the pod's apps, or one app; only callers
	// allowed to (CreateOptions.AllowPrivileged) may ask for it.
	APIAccessIsolator = "host/api-access"
	// PidsLimitIsolator (an integer) bounds the processes and threads of
	// the pod or of an app (the pids controller).
	PidsLimitIsolator = "os/linux/pids-limit"
)

// What became of an isolator (IsolatorStatus.Status).
const (
	// Enforced: applied.
	Enforced = "enforced"
	// Refused: Kurma knows it but could not or would not apply it here
	// (the message says why); the pod runs without it.
	Refused = "refused"
	// Ignored: Kurma does not implement it; the pod runs without it.
	Ignored = "ignored"
)

// IsolatorStatus is what became of one isolator of a pod or an app.
type IsolatorStatus struct {
	Name    string `json:"name"`
	App     string `json:"app,omitempty"` // "" for the pod's
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// ErrForbidden is wrapped by the error of a pod asking for an isolator
// its creator may not use (host/privileged, host/api-access).
var ErrForbidden = errors.New("forbidden")

// level is the isolators of the pod or of one app, read.
type level struct {
	app                    string
	caps                   capSet // nil: no capability isolator
	nnp                    *bool
	oom                    *int
	filter                 []unix.SockFilter
	hasSeccomp             bool
	limits                 cgroup.Limits
	memRequest, cpuRequest *int64
	privileged, apiAccess  bool
	// status indexes, by controller, the statuses of the resource
	// isolators, to report a limit the host refuses.
	status map[string][]int
}

// isolation is what the isolators of a pod resolve to.
type isolation struct {
	statuses   []IsolatorStatus
	pod        cgroup.Limits
	podLevel   *level
	apps       []appIsolation
	hostIPC    bool
	sysctls    map[string]string
	cpuRequest int64 // millicores
	memRequest int64 // bytes
	// deferred are namespaces settled once the pod is read; netSysctls
	// the network's sysctls asked for.
	deferred     []string
	netSysctls   []string
	sysctlStatus int
}

type appIsolation struct {
	iso                   stage.Isolation
	limits                cgroup.Limits
	privileged, apiAccess bool
	level                 *level
}

func (is *isolation) add(name, app, status, format string, args ...any) int {
	is.statuses = append(is.statuses, IsolatorStatus{Name: name, App: app, Status: status, Message: fmt.Sprintf(format, args...)})
	return len(is.statuses) - 1
}

// resolveIsolators reads the pod's and each app's isolators.
func (p *plan) resolveIsolators(allowPrivileged bool) error {
	is := &isolation{}
	pod, err := is.read(p, "", p.manifest.Isolators, allowPrivileged)
	if err != nil {
		return err
	}
	is.podLevel = pod
	is.pod = pod.limits
	if err := is.finishPod(p); err != nil {
		return err
	}
	var sumCPU, sumMem int64
	for i := range p.apps {
		a := &p.apps[i]
		l, err := is.read(p, a.name, a.app.Isolators, allowPrivileged)
		if err != nil {
			return err
		}
		ai, err := is.resolveApp(pod, l)
		if err != nil {
			return fmt.Errorf("app %s: %w", a.name, err)
		}
		is.apps = append(is.apps, ai)
		if l.cpuRequest != nil {
			sumCPU += *l.cpuRequest
		}
		if l.memRequest != nil {
			sumMem += *l.memRequest
		}
	}
	is.cpuRequest, is.memRequest = sumCPU, sumMem
	if pod.cpuRequest != nil {
		is.cpuRequest = *pod.cpuRequest
	}
	if pod.memRequest != nil {
		is.memRequest = *pod.memRequest
	}
	p.iso = is
	return nil
}

// resolveApp combines an app's isolators with the pod's: resources are
// bounded by the pod's group, capabilities are the intersection, both
// seccomp filters apply, no_new_privs is on when either asks for it, the
// app's oom-score-adj wins.
func (is *isolation) resolveApp(pod, app *level) (appIsolation, error) {
	ai := appIsolation{limits: app.limits, level: app}
	ai.privileged = pod.privileged || app.privileged
	ai.apiAccess = pod.apiAccess || app.apiAccess
	base, err := parseCaps(DefaultCapabilities)
	if err != nil {
		return ai, err
	}
	if ai.privileged {
		base = allCaps()
	}
	caps := base
	if app.caps != nil {
		caps = app.caps
	}
	if pod.caps != nil {
		caps = caps.and(pod.caps)
	}
	if ai.privileged && app.caps == nil && pod.caps == nil {
		ai.iso.AllCapabilities = true
	}
	ai.iso.Capabilities = caps.numbers()
	nnp := !ai.privileged
	switch {
	case app.nnp != nil && pod.nnp != nil && *pod.nnp && !*app.nnp:
		is.add(types.LinuxNoNewPrivilegesName, app.app, Refused, "false refused: the pod's no-new-privileges is true")
		nnp = true
	case app.nnp != nil:
		nnp = *app.nnp
	case pod.nnp != nil:
		nnp = *pod.nnp
	}
	ai.iso.NoNewPrivileges = nnp
	if pod.hasSeccomp && pod.filter != nil {
		ai.iso.Seccomp = append(ai.iso.Seccomp, pod.filter)
	}
	switch {
	case app.hasSeccomp:
		if app.filter != nil {
			ai.iso.Seccomp = append(ai.iso.Seccomp, app.filter)
		}
	case !pod.hasSeccomp && !ai.privileged:
		def, err := seccomp.Default()
		if err != nil {
			return ai, err
		}
		ai.iso.Seccomp = append(ai.iso.Seccomp, def)
	}
	ai.iso.OOMScoreAdj = pod.oom
	if app.oom != nil {
		ai.iso.OOMScoreAdj = app.oom
	}
	// The pod's group bounds the app's: say so where the app asks more.
	bound := func(name string, a, p *int64) {
		if a != nil && p != nil && *a > *p {
			for _, i := range app.status[name] {
				is.statuses[i].Message += fmt.Sprintf("; bounded by the pod's %d", *p)
			}
		}
	}
	bound("memory", app.limits.MemoryMax, pod.limits.MemoryMax)
	bound("cpu", app.limits.CPUMax, pod.limits.CPUMax)
	bound("pids", app.limits.PidsMax, pod.limits.PidsMax)
	return ai, nil
}

// read reads the isolators of the pod (app "") or of an app.
func (is *isolation) read(p *plan, app string, isos types.Isolators, allowPrivileged bool) (*level, error) {
	l := &level{app: app, status: map[string][]int{}}
	where := "pod"
	if app != "" {
		where = "app " + app
	}
	bad := func(name types.ACIdentifier, format string, args ...any) error {
		return invalid("%s: isolator %s: %s", where, name, fmt.Sprintf(format, args...))
	}
	seen := map[types.ACIdentifier]bool{}
	for _, iso := range isos {
		name := iso.Name
		if iso.ValueRaw == nil {
			return nil, bad(name, "no value")
		}
		raw := []byte(*iso.ValueRaw)
		decode := func(v any) error {
			if err := json.Unmarshal(raw, v); err != nil {
				return bad(name, "%v", err)
			}
			return nil
		}
		once := func() error {
			if seen[name] {
				return bad(name, "given twice")
			}
			seen[name] = true
			return nil
		}
		switch name {
		case types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName:
			var v struct {
				Set []string `json:"set"`
			}
			if err := decode(&v); err != nil {
				return nil, err
			}
			if len(v.Set) == 0 {
				return nil, bad(name, "the set is empty")
			}
			set, err := parseCaps(v.Set)
			if err != nil {
				return nil, bad(name, "%v", err)
			}
			var other types.ACIdentifier = types.LinuxCapabilitiesRevokeSetName
			if name == other {
				other = types.LinuxCapabilitiesRetainSetName
			}
			if seen[other] {
				return nil, bad(name, "cannot be given with %s", other)
			}
			seen[name] = true
			if name == types.LinuxCapabilitiesRetainSetName {
				if l.caps == nil {
					l.caps = capSet{}
				}
				for c := range set {
					l.caps[c] = true
				}
			} else {
				base, _ := parseCaps(DefaultCapabilities)
				if l.caps != nil {
					base = l.caps
				}
				l.caps = base.minus(set)
			}
		case types.LinuxNoNewPrivilegesName:
			var v bool
			if err := decode(&v); err != nil {
				return nil, err
			}
			if err := once(); err != nil {
				return nil, err
			}
			l.nnp = &v
			is.add(string(name), app, Enforced, "%v", v)
		case types.LinuxOOMScoreAdjName:
			var v int
			if err := decode(&v); err != nil {
				return nil, err
			}
			if v < -1000 || v > 1000 {
				return nil, bad(name, "%d is not between -1000 and 1000", v)
			}
			if err := once(); err != nil {
				return nil, err
			}
			l.oom = &v
			is.add(string(name), app, Enforced, "%d", v)
		case types.LinuxSeccompRemoveSetName, types.LinuxSeccompRetainSetName:
			var v struct {
				Set   []string `json:"set"`
				Errno string   `json:"errno"`
			}
			if err := decode(&v); err != nil {
				return nil, err
			}
			if l.hasSeccomp {
				return nil, bad(name, "only one seccomp isolator is allowed")
			}
			var prog seccomp.Program
			var err error
			if name == types.LinuxSeccompRemoveSetName {
				prog, err = seccomp.RemoveSet(v.Set, v.Errno)
			} else {
				prog, err = seccomp.RetainSet(v.Set, v.Errno)
			}
			if err != nil {
				return nil, bad(name, "%v", err)
			}
			l.hasSeccomp, l.filter = true, prog
			action := "kill the process (SIGSYS)"
			if v.Errno != "" {
				action = "return " + v.Errno
			}
			if prog == nil {
				is.add(string(name), app, Enforced, "every system call allowed: no filter")
			} else {
				is.add(string(name), app, Enforced, "%d system calls listed; blocked ones %s", len(v.Set), action)
			}
		case types.ResourceMemoryName, types.ResourceCPUName, types.ResourceBlockBandwidthName, types.ResourceBlockIOPSName:
			if err := l.resource(is, name, raw, bad); err != nil {
				return nil, err
			}
		case types.LinuxCPUSharesName:
			var v int64
			if err := decode(&v); err != nil {
				return nil, err
			}
			if v < 2 || v > 262144 {
				return nil, bad(name, "%d is not between 2 and 262144", v)
			}
			if err := once(); err != nil {
				return nil, err
			}
			l.limits.CPUShares = &v
			l.status["cpu"] = append(l.status["cpu"], is.add(string(name), app, Enforced, "cpu shares %d (cgroup v2 weight %d)", v, cgroup.Weight(v)))
		case PidsLimitIsolator:
			var v int64
			if err := decode(&v); err != nil {
				return nil, err
			}
			if v < 1 {
				return nil, bad(name, "%d: at least one process is needed", v)
			}
			if err := once(); err != nil {
				return nil, err
			}
			l.limits.PidsMax = &v
			l.status["pids"] = append(l.status["pids"], is.add(string(name), app, Enforced, "at most %d processes and threads", v))
		case PrivilegedIsolator, APIAccessIsolator:
			var v bool
			if err := decode(&v); err != nil {
				return nil, err
			}
			if err := once(); err != nil {
				return nil, err
			}
			if !v {
				is.add(string(name), app, Enforced, "false")
				continue
			}
			if !allowPrivileged {
				return nil, fmt.Errorf("%w: %s: isolator %s: the caller's role does not allow it (only admin may create privileged pods or pods with the API's socket)", ErrForbidden, where, name)
			}
			if name == PrivilegedIsolator {
				l.privileged = true
				is.add(string(name), app, Enforced, "every capability, the host's devices, /proc unmasked, /sys writable, no default seccomp filter")
			} else {
				l.apiAccess = true
				is.add(string(name), app, Enforced, "the API socket at %s", stage.APISocketTarget)
			}
		case NamespacesIsolator:
			if app != "" {
				is.add(string(name), app, Ignored, "a pod's namespaces are the pod's: give it at the pod's level")
				continue
			}
			if err := is.namespaces(p, raw, bad); err != nil {
				return nil, err
			}
		case types.UnixSysctlName:
			if app != "" {
				is.add(string(name), app, Ignored, "sysctls are the pod's: give them at the pod's level")
				continue
			}
			if err := is.sysctl(p, raw, bad); err != nil {
				return nil, err
			}
		case types.ResourceNetworkBandwidthName:
			is.add(string(name), app, Ignored, "Kurma does not shape network traffic")
		case types.LinuxSELinuxContextName:
			is.add(string(name), app, Ignored, "the Kurma OS has no SELinux")
		default:
			is.add(string(name), app, Ignored, "unknown isolator")
		}
	}
	if l.caps != nil {
		kind := types.LinuxCapabilitiesRetainSetName
		if seen[types.LinuxCapabilitiesRevokeSetName] {
			kind = types.LinuxCapabilitiesRevokeSetName
		}
		is.add(kind, app, Enforced, "bounding set: %s", l.caps)
	}
	// The pod's privileges need its own.
	if app == "" && l.privileged {
		p.privileged = true
	}
	return l, nil
}

// resource reads a resource isolator (ace.md: request defaults to the
// limit).
func (l *level) resource(is *isolation, name types.ACIdentifier, raw []byte, bad func(types.ACIdentifier, string, ...any) error) error {
	var v struct {
		Default bool               `json:"default"`
		Request *resource.Quantity `json:"request"`
		Limit   *resource.Quantity `json:"limit"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return bad(name, "%v", err)
	}
	if v.Limit == nil && v.Request == nil {
		return bad(name, "neither limit nor request")
	}
	val := func(q *resource.Quantity, milli bool) *int64 {
		if q == nil {
			return nil
		}
		n := q.Value()
		if milli {
			n = q.MilliValue()
		}
		return &n
	}
	switch name {
	case types.ResourceMemoryName:
		l.limits.MemoryMax = val(v.Limit, false)
		l.limits.MemoryLow = val(v.Request, false)
		l.memRequest = l.limits.MemoryLow
		if l.memRequest == nil {
			l.memRequest = l.limits.MemoryMax
		}
		if l.limits.MemoryMax != nil && *l.limits.MemoryMax < 1<<20 {
			return bad(name, "limit %d is below 1 MiB", *l.limits.MemoryMax)
		}
		l.status["memory"] = append(l.status["memory"], is.add(string(name), l.app, Enforced, "limit %s, request %s", quantity(v.Limit), quantity(v.Request)))
	case types.ResourceCPUName:
		l.limits.CPUMax = val(v.Limit, true)
		l.cpuRequest = val(v.Request, true)
		if l.cpuRequest == nil {
			l.cpuRequest = l.limits.CPUMax
		}
		if l.cpuRequest != nil && l.limits.CPUShares == nil {
			shares := max(*l.cpuRequest*1024/1000, 2)
			l.limits.CPUShares = &shares
		}
		if l.limits.CPUMax != nil && *l.limits.CPUMax < 10 {
			return bad(name, "limit %s is below 10m", quantity(v.Limit))
		}
		l.status["cpu"] = append(l.status["cpu"], is.add(string(name), l.app, Enforced, "limit %s cores, request %s cores", quantity(v.Limit), quantity(v.Request)))
	case types.ResourceBlockBandwidthName, types.ResourceBlockIOPSName:
		if !v.Default {
			return bad(name, "default must be true (the limit applies to every block device)")
		}
		if v.Request != nil || v.Limit == nil {
			return bad(name, "give a limit and no request")
		}
		if name == types.ResourceBlockBandwidthName {
			l.limits.IOBps = val(v.Limit, false)
			l.status["io"] = append(l.status["io"], is.add(string(name), l.app, Enforced, "%s bytes/s read and written, every block device", quantity(v.Limit)))
		} else {
			l.limits.IOIops = val(v.Limit, false)
			l.status["io"] = append(l.status["io"], is.add(string(name), l.app, Enforced, "%s operations/s read and written, every block device", quantity(v.Limit)))
		}
	}
	return nil
}

func quantity(q *resource.Quantity) string {
	if q == nil {
		return "none"
	}
	return q.String()
}

// namespaces reads Kurma's os/linux/namespaces isolator (pod level).
func (is *isolation) namespaces(p *plan, raw []byte, bad func(types.ACIdentifier, string, ...any) error) error {
	var ns map[string]string
	if err := json.Unmarshal(raw, &ns); err != nil {
		return bad(NamespacesIsolator, "%v", err)
	}
	var msgs []string
	for name, val := range ns {
		if val != "host" && val != "child" {
			return bad(NamespacesIsolator, "%s: %q is neither \"host\" nor \"child\"", name, val)
		}
		host := val == "host"
		switch name {
		case "net":
			p.hostNetwork = host
		case "uts":
			p.hostUTS = host
		case "ipc":
			if host {
				is.deferred = append(is.deferred, "ipc")
			}
		case "mnt":
			if host {
				is.add(NamespacesIsolator, "", Refused, "mnt: \"host\" refused: each app has a mount namespace and root of its own")
			}
		case "pid":
			if host {
				is.add(NamespacesIsolator, "", Refused, "pid: \"host\" refused: the pod's init is PID 1 of the pod's own PID namespace")
			}
		case "user":
			if !host {
				is.add(NamespacesIsolator, "", Refused, "user: \"child\" refused: this daemon runs pods in the host's user namespace")
			}
		default:
			return bad(NamespacesIsolator, "unknown namespace %q", name)
		}
		msgs = append(msgs, name+": "+val)
	}
	is.add(NamespacesIsolator, "", Enforced, "%s", strings.Join(sorted(msgs), ", "))
	return nil
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}

// sysctlPrefixes are the sysctls of the namespaces a pod has of its own:
// the network's (unless it uses the host's) and IPC's.
var sysctlPrefixes = []string{"kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."}

// sysctl reads the appc os/unix/sysctl isolator (pod level): only
// sysctls of the pod's own namespaces are allowed.
func (is *isolation) sysctl(p *plan, raw []byte, bad func(types.ACIdentifier, string, ...any) error) error {
	var v map[string]string
	if err := json.Unmarshal(raw, &v); err != nil {
		return bad(types.UnixSysctlName, "%v", err)
	}
	is.sysctls = map[string]string{}
	var keys []string
	for k, val := range v {
		if k == "" || strings.Contains(k, "/") || strings.Contains(k, "..") || strings.ContainsAny(val, "\n\x00") {
			return bad(types.UnixSysctlName, "%q is not a sysctl", k)
		}
		ok := slices.ContainsFunc(sysctlPrefixes, func(pre string) bool { return strings.HasPrefix(k, pre) })
		if strings.HasPrefix(k, "net.") {
			ok = true
			is.netSysctls = append(is.netSysctls, k)
		}
		if !ok {
			return bad(types.UnixSysctlName, "%s is not a sysctl of the pod's own namespaces (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)", k)
		}
		is.sysctls[k] = val
		keys = append(keys, k+"="+val)
	}
	is.sysctlStatus = is.add(types.UnixSysctlName, "", Enforced, "%s", strings.Join(sorted(keys), ", "))
	return nil
}

// finishPod settles what needs the whole pod's isolators read.
func (is *isolation) finishPod(p *plan) error {
	for _, d := range is.deferred {
		if d == "ipc" {
			if p.privileged {
				is.hostIPC = true
			} else {
				is.add(NamespacesIsolator, "", Refused, "ipc: \"host\" refused: only a privileged pod (host/privileged) shares the host's IPC namespace")
			}
		}
	}
	if len(is.netSysctls) > 0 && p.hostNetwork {
		return invalid("pod: isolator %s: %s: the pod uses the host's network, whose sysctls are the host's", types.UnixSysctlName, strings.Join(sorted(is.netSysctls), ", "))
	}
	if is.hostIPC && len(is.sysctls) > len(is.netSysctls) {
		return invalid("pod: isolator %s: the pod uses the host's IPC namespace, whose sysctls are the host's", types.UnixSysctlName)
	}
	return nil
}

// refuse marks the resource isolators whose limits the host did not
// take as refused, and returns the statuses.
func (is *isolation) refuse(applied []cgroup.Applied) []IsolatorStatus {
	for _, a := range applied {
		if a.Err == nil {
			continue
		}
		l := is.podLevel
		for _, ai := range is.apps {
			if ai.level.app == a.App && a.App != "" {
				l = ai.level
			}
		}
		for _, i := range l.status[a.Controller] {
			is.statuses[i].Status = Refused
			is.statuses[i].Message = a.Err.Error()
		}
	}
	return is.statuses
}

// kurmaValue is the value of an isolator Kurma adds to the appc spec's,
// for the appc schema library, which refuses apps with isolators it does
// not know. Kurma reads the values itself (read); the library keeps
// them as they are. The embedded type gives the library's unexported
// method (several instances allowed).
type kurmaValue struct {
	types.LinuxNoNewPrivileges
}

func (v *kurmaValue) UnmarshalJSON([]byte) error     { return nil }
func (v kurmaValue) AssertValid() error              { return nil }
func (v kurmaValue) Conflicts() []types.ACIdentifier { return nil }

func init() {
	for _, name := range []string{PrivilegedIsolator, APIAccessIsolator, PidsLimitIsolator, NamespacesIsolator} {
		types.AddIsolatorValueConstructor(types.ACIdentifier(name), func() types.IsolatorValue { return &kurmaValue{} })
	}
}
