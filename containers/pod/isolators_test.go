package pod

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

func isolator(name, value string) types.Isolator {
	raw := json.RawMessage(value)
	return types.Isolator{Name: types.ACIdentifier(name), ValueRaw: &raw}
}

// resolve resolves the isolators of a pod of one app "a".
func resolve(t *testing.T, pod, app []types.Isolator, allowPrivileged bool) (*plan, error) {
	t.Helper()
	p := &plan{manifest: &schema.PodManifest{Isolators: pod}, apps: []appPlan{{name: "a", app: &types.App{Isolators: app}}}}
	return p, p.resolveIsolators(allowPrivileged)
}

func statusOf(p *plan, name, app string) []IsolatorStatus {
	var out []IsolatorStatus
	for _, s := range p.iso.statuses {
		if s.Name == name && s.App == app {
			out = append(out, s)
		}
	}
	return out
}

func TestNamespacesIsolator(t *testing.T) {
	for _, c := range []struct {
		value            string
		privileged       bool
		hostNet, hostUTS bool
		hostIPC          bool
		refused          int
		invalid          bool
		description      string
	}{
		{`{"net":"host"}`, false, true, false, false, 0, false, "host network"},
		{`{"net":"child","uts":"host"}`, false, false, true, false, 0, false, "host uts"},
		{`{"pid":"host","ipc":"host","mnt":"host"}`, false, false, false, false, 3, false, "always new"},
		{`{"ipc":"host"}`, true, false, false, true, 0, false, "host IPC when privileged"},
		{`{"user":"child"}`, false, false, false, false, 1, false, "user namespaces"},
		{`{"net":"maybe"}`, false, false, false, false, 0, true, "bad value"},
		{`{"cgroup":"host"}`, false, false, false, false, 0, true, "unknown namespace"},
		{`["net"]`, false, false, false, false, 0, true, "not an object"},
	} {
		isos := []types.Isolator{isolator(NamespacesIsolator, c.value)}
		if c.privileged {
			isos = append(isos, isolator(PrivilegedIsolator, "true"))
		}
		p, err := resolve(t, isos, nil, true)
		if (err != nil) != c.invalid {
			t.Errorf("%s: %v", c.description, err)
			continue
		}
		if c.invalid {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", c.description, err)
			}
			continue
		}
		refused := 0
		for _, s := range p.iso.statuses {
			if s.Status == Refused {
				refused++
			}
		}
		if p.hostNetwork != c.hostNet || p.hostUTS != c.hostUTS || p.iso.hostIPC != c.hostIPC || refused != c.refused {
			t.Errorf("%s: host net %v uts %v ipc %v, statuses %+v", c.description, p.hostNetwork, p.hostUTS, p.iso.hostIPC, p.iso.statuses)
		}
	}
}

func TestCapabilityIsolators(t *testing.T) {
	num := func(names ...string) []int {
		s, err := parseCaps(names)
		if err != nil {
			t.Fatal(err)
		}
		return s.numbers()
	}
	for _, c := range []struct {
		description string
		pod, app    []types.Isolator
		want        []int
		all         bool
	}{
		{"default set", nil, nil, num(DefaultCapabilities...), false},
		{"retain", nil, []types.Isolator{isolator(types.LinuxCapabilitiesRetainSetName, `{"set":["CAP_NET_ADMIN","CAP_KILL"]}`)}, num("CAP_NET_ADMIN", "CAP_KILL"), false},
		{"remove", nil, []types.Isolator{isolator(types.LinuxCapabilitiesRevokeSetName, `{"set":["CAP_MKNOD","CAP_SYS_CHROOT","CAP_SYS_ADMIN"]}`)},
			num("CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETFCAP"), false},
		{"pod bounds app", []types.Isolator{isolator(types.LinuxCapabilitiesRetainSetName, `{"set":["CAP_KILL","CAP_CHOWN"]}`)},
			[]types.Isolator{isolator(types.LinuxCapabilitiesRetainSetName, `{"set":["CAP_KILL","CAP_NET_ADMIN"]}`)}, num("CAP_KILL"), false},
		{"pod's set for apps without one", []types.Isolator{isolator(types.LinuxCapabilitiesRevokeSetName, `{"set":["CAP_NET_RAW"]}`)}, nil,
			num("CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETFCAP", "CAP_SYS_CHROOT"), false},
		{"privileged app", nil, []types.Isolator{isolator(PrivilegedIsolator, "true")}, allCaps().numbers(), true},
	} {
		p, err := resolve(t, c.pod, c.app, true)
		if err != nil {
			t.Errorf("%s: %v", c.description, err)
			continue
		}
		iso := p.iso.apps[0].iso
		if !slices.Equal(iso.Capabilities, c.want) || iso.AllCapabilities != c.all {
			t.Errorf("%s: capabilities %v (all %v), want %v (all %v)", c.description, iso.Capabilities, iso.AllCapabilities, c.want, c.all)
		}
	}
	if _, err := resolve(t, nil, []types.Isolator{isolator(types.LinuxCapabilitiesRetainSetName, `{"set":["CAP_KILL"]}`), isolator(types.LinuxCapabilitiesRevokeSetName, `{"set":["CAP_KILL"]}`)}, true); !errors.Is(err, ErrInvalid) {
		t.Errorf("retain and remove together: %v", err)
	}
	if _, err := resolve(t, nil, []types.Isolator{isolator(types.LinuxCapabilitiesRetainSetName, `{"set":["CAP_NOPE"]}`)}, true); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown capability: %v", err)
	}
}

func TestSecurityIsolators(t *testing.T) {
	p, err := resolve(t, nil, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	iso := p.iso.apps[0].iso
	if !iso.NoNewPrivileges || len(iso.Seccomp) != 1 || iso.OOMScoreAdj != nil {
		t.Errorf("defaults: nnp %v, %d filters, oom %v; want no_new_privs, the default filter", iso.NoNewPrivileges, len(iso.Seccomp), iso.OOMScoreAdj)
	}
	p, err = resolve(t,
		[]types.Isolator{isolator(types.LinuxNoNewPrivilegesName, "true"), isolator(types.LinuxOOMScoreAdjName, "100"), isolator(types.LinuxSeccompRemoveSetName, `{"set":["chmod"],"errno":"EPERM"}`)},
		[]types.Isolator{isolator(types.LinuxNoNewPrivilegesName, "false"), isolator(types.LinuxOOMScoreAdjName, "500"), isolator(types.LinuxSeccompRetainSetName, `{"set":["@kurma/default","read"]}`)}, false)
	if err != nil {
		t.Fatal(err)
	}
	iso = p.iso.apps[0].iso
	if !iso.NoNewPrivileges || len(iso.Seccomp) != 2 || iso.OOMScoreAdj == nil || *iso.OOMScoreAdj != 500 {
		t.Errorf("pod and app: nnp %v, %d filters, oom %v; want no_new_privs (the pod's true bounds), both filters, 500", iso.NoNewPrivileges, len(iso.Seccomp), iso.OOMScoreAdj)
	}
	if s := statusOf(p, types.LinuxNoNewPrivilegesName, "a"); len(s) != 2 || s[1].Status != Refused {
		t.Errorf("app's no-new-privileges false under the pod's true: %+v", s)
	}
	for _, bad := range []types.Isolator{
		isolator(types.LinuxOOMScoreAdjName, "2000"),
		isolator(types.LinuxSeccompRemoveSetName, `{"set":["no_such_call"]}`),
		isolator(types.LinuxSeccompRemoveSetName, `{"set":["read"],"errno":"EWHAT"}`),
		isolator(types.ResourceMemoryName, `{"limit":"100"}`),
		isolator(types.ResourceBlockIOPSName, `{"limit":"100"}`),
		isolator(PidsLimitIsolator, `0`),
		isolator(types.LinuxCPUSharesName, `1`),
	} {
		if _, err := resolve(t, nil, []types.Isolator{bad}, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %s: %v, want ErrInvalid", bad.Name, *bad.ValueRaw, err)
		}
	}
}

func TestPrivilegedNeedsPermission(t *testing.T) {
	for _, name := range []string{PrivilegedIsolator, APIAccessIsolator} {
		for _, level := range []string{"pod", "app"} {
			var pod, app []types.Isolator
			if level == "pod" {
				pod = []types.Isolator{isolator(name, "true")}
			} else {
				app = []types.Isolator{isolator(name, "true")}
			}
			if _, err := resolve(t, pod, app, false); !errors.Is(err, ErrForbidden) {
				t.Errorf("%s at %s level without permission: %v, want ErrForbidden", name, level, err)
			}
			p, err := resolve(t, pod, app, true)
			if err != nil {
				t.Errorf("%s at %s level with permission: %v", name, level, err)
				continue
			}
			ai := p.iso.apps[0]
			if name == PrivilegedIsolator && (!ai.privileged || ai.iso.NoNewPrivileges || len(ai.iso.Seccomp) != 0) {
				t.Errorf("privileged at %s level: %+v", level, ai)
			}
			if name == APIAccessIsolator && !ai.apiAccess {
				t.Errorf("api access at %s level not given", level)
			}
		}
	}
	if _, err := resolve(t, []types.Isolator{isolator(PrivilegedIsolator, "false")}, nil, false); err != nil {
		t.Errorf("host/privileged false needs no permission: %v", err)
	}
}

func TestResourceIsolators(t *testing.T) {
	p, err := resolve(t,
		[]types.Isolator{isolator(types.ResourceMemoryName, `{"limit":"1Gi","request":"512Mi"}`), isolator(types.ResourceCPUName, `{"limit":"2"}`), isolator(PidsLimitIsolator, "100")},
		[]types.Isolator{isolator(types.ResourceMemoryName, `{"limit":"2Gi"}`), isolator(types.ResourceCPUName, `{"request":"250m","limit":"500m"}`),
			isolator(types.ResourceBlockBandwidthName, `{"default":true,"limit":"1M"}`), isolator(types.ResourceBlockIOPSName, `{"default":true,"limit":"100"}`),
			isolator(types.LinuxCPUSharesName, "512"), isolator("resource/network-bandwidth", `{"default":true,"limit":"1M"}`), isolator("example.com/unknown", "1")}, false)
	if err != nil {
		t.Fatal(err)
	}
	pod, app := p.iso.pod, p.iso.apps[0].limits
	if *pod.MemoryMax != 1<<30 || *pod.MemoryLow != 512<<20 || *pod.CPUMax != 2000 || *pod.PidsMax != 100 {
		t.Errorf("pod limits %+v", pod)
	}
	if *app.MemoryMax != 2<<30 || *app.CPUMax != 500 || *app.CPUShares != 512 || *app.IOBps != 1<<20 && *app.IOBps != 1000000 || *app.IOIops != 100 {
		t.Errorf("app limits %+v", app)
	}
	if p.iso.memRequest != 512<<20 || p.iso.cpuRequest != 2000 {
		t.Errorf("requests: %d bytes, %d millicores; want the pod's (request, and limit for the CPU)", p.iso.memRequest, p.iso.cpuRequest)
	}
	if s := statusOf(p, types.ResourceMemoryName, "a"); len(s) != 1 || !strings.Contains(s[0].Message, "bounded by the pod's") {
		t.Errorf("an app limit over the pod's: %+v", s)
	}
	for _, name := range []string{"resource/network-bandwidth", "example.com/unknown"} {
		if s := statusOf(p, name, "a"); len(s) != 1 || s[0].Status != Ignored {
			t.Errorf("%s: %+v, want ignored", name, s)
		}
	}
	// Without pod-level requests, the apps' add up.
	p, err = resolve(t, nil, []types.Isolator{isolator(types.ResourceMemoryName, `{"limit":"64Mi"}`)}, false)
	if err != nil || p.iso.memRequest != 64<<20 {
		t.Errorf("app request: %v %d", err, p.iso.memRequest)
	}
}

func TestSysctlIsolator(t *testing.T) {
	p, err := resolve(t, []types.Isolator{isolator(types.UnixSysctlName, `{"net.ipv4.ip_forward":"1","kernel.shmmax":"1000000"}`)}, nil, false)
	if err != nil || len(p.iso.sysctls) != 2 {
		t.Fatalf("%v %v", err, p)
	}
	for _, bad := range []string{`{"kernel.hostname":"x"}`, `{"vm.swappiness":"1"}`, `{"../x":"1"}`} {
		if _, err := resolve(t, []types.Isolator{isolator(types.UnixSysctlName, bad)}, nil, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := resolve(t, []types.Isolator{isolator(NamespacesIsolator, `{"net":"host"}`), isolator(types.UnixSysctlName, `{"net.ipv4.ip_forward":"1"}`)}, nil, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("a host network's sysctl: %v", err)
	}
}
