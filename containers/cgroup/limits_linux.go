package cgroup

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Limits are the resource limits of a pod or an app; nil is no limit.
type Limits struct {
	// MemoryMax and MemoryLow are bytes: the limit (the kernel reclaims,
	// then kills, past it) and the request (kept from reclaim when
	// memory is short).
	MemoryMax, MemoryLow *int64
	// CPUMax is millicores of CPU time: 500 is half a CPU per period.
	CPUMax *int64
	// CPUShares is the relative weight of v1's cpu.shares (2–262144,
	// 1024 being a CPU's worth); v2's cpu.weight is derived from it.
	CPUShares *int64
	// IOBps and IOIops bound the reads and the writes of every block
	// device: bytes and operations per second.
	IOBps, IOIops *int64
	// PidsMax bounds the processes and threads.
	PidsMax *int64
}

func (l Limits) uses(c string) bool {
	switch c {
	case "memory":
		return l.MemoryMax != nil || l.MemoryLow != nil
	case "cpu":
		return l.CPUMax != nil || l.CPUShares != nil
	case "io":
		return l.IOBps != nil || l.IOIops != nil
	case "pids":
		return l.PidsMax != nil
	}
	return false
}

// Empty reports whether l limits nothing.
func (l Limits) Empty() bool {
	for _, c := range resourceControllers {
		if l.uses(c) {
			return false
		}
	}
	return true
}

// Placement is where an app's processes go and what of its groups it
// sees (see package stage's AppCgroup).
type Placement struct {
	V2        string
	V1        []string
	Mounts    [][2]string // source, target
	OOMEvents string
}

// Applied says what became of the limits of one controller for the pod
// ("" app) or an app: Err is nil when they are set.
type Applied struct {
	App, Controller string
	Err             error
}

// ErrNoController is wrapped by the error of a limit whose controller
// the host lacks.
var ErrNoController = errors.New("the host has no such cgroup controller")

// AppLeaf is the v2 leaf group of an app (and the v1 group of an app
// with limits of its own), below the pod's AppsGroup.
func AppLeaf(app string) string { return "app-" + app }

// AppsGroup is the group below a pod's that holds its apps and bears the
// pod's limits. The pod's init stays out of it (v2: in InitLeaf beside
// it): a Go program's threads and memory do not count against the
// limits the user gave the apps.
const AppsGroup = "apps"

// Setup sets the pod's limits on its AppsGroup and makes its apps'
// groups, with their own limits, before the apps start. It returns
// where each app's processes go (in the order of apps) and what became
// of each controller's limits.
//
// With v2 the layout is POD/init (the init) and POD/apps/app-NAME (each
// app). In a v1 hierarchy that has a limit (a hybrid host's, or a v1
// host's) it is POD/apps, with POD/apps/app-NAME for an app with a limit
// of its own there; every app joins its group in each such hierarchy
// before it execs, while the init stays where it was.
func (g *Group) Setup(pod Limits, apps []string, appLimits []Limits) ([]Placement, []Applied, error) {
	h := g.h
	var applied []Applied
	podDir := map[string]string{} // controller root → the pod's group there
	podDir[h.Roots[0]] = g.Dirs[0]
	if h.Version == V1 {
		for i, r := range h.Roots {
			podDir[r] = g.Dirs[i]
		}
	}
	appsUse := func(c string) bool {
		return slices.ContainsFunc(appLimits, func(l Limits) bool { return l.uses(c) })
	}
	used := func(c string) bool { return pod.uses(c) || appsUse(c) }
	mkdir := func(root, dir string) error {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cgroup: %w", err)
		}
		if h.Version == V1 || root != h.Roots[0] {
			if err := inheritCpuset(root, dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	// The apps' group in each hierarchy: always with v2; in a v1
	// hierarchy when a limit needs it, the pod's group there made first
	// on a hybrid host.
	appsDir := map[string]string{} // controller root → the apps' group there
	v1Apps := map[string]bool{}    // the roots whose apps' group every app joins
	if h.Version == V2 {
		appsDir[h.Roots[0]] = filepath.Join(g.Dirs[0], AppsGroup)
		if err := mkdir(h.Roots[0], appsDir[h.Roots[0]]); err != nil {
			return nil, nil, err
		}
	}
	for _, c := range resourceControllers {
		root, ok := h.Controllers[c]
		if !ok || !used(c) {
			continue
		}
		if _, ok := appsDir[root]; ok {
			continue
		}
		if _, ok := podDir[root]; !ok {
			podDir[root] = filepath.Join(root, h.Parent, filepath.Base(g.Dirs[0]))
			if err := mkdir(root, podDir[root]); err != nil {
				return nil, nil, err
			}
		}
		appsDir[root] = filepath.Join(podDir[root], AppsGroup)
		if err := mkdir(root, appsDir[root]); err != nil {
			return nil, nil, err
		}
		v1Apps[root] = true
	}
	// v2: the controllers the limits use enabled for the apps' group,
	// and below it for the apps' own limits.
	if h.Version == V2 {
		for _, c := range resourceControllers {
			if root, ok := h.Controllers[c]; !ok || root != h.Roots[0] {
				continue
			}
			if used(c) {
				if err := enable(g.Dirs[0], c); err != nil {
					return nil, nil, err
				}
			}
			if appsUse(c) {
				if err := enable(appsDir[h.Roots[0]], c); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	for _, c := range resourceControllers {
		if !pod.uses(c) {
			continue
		}
		root, ok := h.Controllers[c]
		if !ok {
			applied = append(applied, Applied{Controller: c, Err: fmt.Errorf("%w: %s", ErrNoController, c)})
			continue
		}
		applied = append(applied, Applied{Controller: c, Err: set(c, appsDir[root], root != h.Roots[0] || h.Version == V1, pod)})
	}
	roots := slices.Sorted(maps.Keys(podDir)) // the hierarchies the pod has a group in
	places := make([]Placement, len(apps))
	for i, app := range apps {
		pl := &places[i]
		l := appLimits[i]
		own := map[string]string{} // root → the app's group there
		if h.Version == V2 {
			pl.V2 = filepath.Join(appsDir[h.Roots[0]], AppLeaf(app))
			if err := os.Mkdir(pl.V2, 0o755); err != nil {
				return nil, nil, fmt.Errorf("cgroup: %w", err)
			}
			own[h.Roots[0]] = pl.V2
		}
		for _, c := range resourceControllers {
			if !l.uses(c) {
				continue
			}
			root, ok := h.Controllers[c]
			if !ok {
				applied = append(applied, Applied{App: app, Controller: c, Err: fmt.Errorf("%w: %s", ErrNoController, c)})
				continue
			}
			dir, ok := own[root]
			if !ok {
				dir = filepath.Join(appsDir[root], AppLeaf(app))
				if err := mkdir(root, dir); err != nil {
					return nil, nil, err
				}
				own[root] = dir
			}
			applied = append(applied, Applied{App: app, Controller: c, Err: set(c, dir, root != h.Roots[0] || h.Version == V1, l)})
		}
		// Its group, or the apps', in each hierarchy where the apps have
		// one: joined, and seen inside; the pod's in the others (v1).
		for _, r := range roots {
			src, ok := own[r]
			if !ok {
				src, ok = appsDir[r]
			}
			if !ok {
				src = podDir[r]
			}
			if v1Apps[r] {
				pl.V1 = append(pl.V1, src)
			}
			target := "/sys/fs/cgroup/" + filepath.Base(r)
			if h.Version == V2 && r == h.Roots[0] && len(roots) == 1 {
				target = "/sys/fs/cgroup"
			}
			pl.Mounts = append(pl.Mounts, [2]string{src, target})
			if h.Controllers["memory"] == r {
				if h.Version == V2 && r == h.Roots[0] {
					// The nearest group with the memory controller.
					for _, d := range []string{src, appsDir[r], podDir[r]} {
						pl.OOMEvents = filepath.Join(d, "memory.events")
						if _, err := os.Stat(pl.OOMEvents); err == nil {
							break
						}
					}
				} else {
					pl.OOMEvents = filepath.Join(src, "memory.oom_control")
				}
			}
		}
	}
	return places, applied, nil
}

// enable enables controller c for the groups below dir (v2).
func enable(dir, c string) error {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
		return fmt.Errorf("cgroup: enable %s below %s: %w", c, dir, err)
	}
	return nil
}

// set writes the limits of controller c into the group dir.
func set(c, dir string, v1 bool, l Limits) error {
	w := func(file, val string) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
			return fmt.Errorf("%s = %q: %w", file, val, err)
		}
		return nil
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	switch {
	case c == "memory" && v1:
		if l.MemoryMax != nil {
			if err := w("memory.limit_in_bytes", i(*l.MemoryMax)); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
				if err := w("memory.memsw.limit_in_bytes", i(*l.MemoryMax)); err != nil {
					return err
				}
			}
		}
		if l.MemoryLow != nil {
			return w("memory.soft_limit_in_bytes", i(*l.MemoryLow))
		}
	case c == "memory":
		if l.MemoryMax != nil {
			if err := w("memory.max", i(*l.MemoryMax)); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err == nil {
				if err := w("memory.swap.max", "0"); err != nil {
					return err
				}
			}
		}
		if l.MemoryLow != nil {
			return w("memory.low", i(*l.MemoryLow))
		}
	case c == "cpu" && v1:
		if l.CPUMax != nil {
			if err := w("cpu.cfs_period_us", "100000"); err != nil {
				return err
			}
			if err := w("cpu.cfs_quota_us", i(max(*l.CPUMax*100, 1000))); err != nil {
				return err
			}
		}
		if l.CPUShares != nil {
			return w("cpu.shares", i(*l.CPUShares))
		}
	case c == "cpu":
		if l.CPUMax != nil {
			if err := w("cpu.max", i(max(*l.CPUMax*100, 1000))+" 100000"); err != nil {
				return err
			}
		}
		if l.CPUShares != nil {
			return w("cpu.weight", i(Weight(*l.CPUShares)))
		}
	case c == "io":
		return setIO(dir, v1, l)
	case c == "pids":
		return w("pids.max", i(*l.PidsMax))
	}
	return nil
}

// Weight converts v1 cpu.shares (2–262144) to v2 cpu.weight (1–10000).
func Weight(shares int64) int64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// setIO bounds every block device of the host. A device that refuses
// (some virtual ones do) is skipped; none accepting is an error.
func setIO(dir string, v1 bool, l Limits) error {
	devs, err := BlockDevices()
	if err != nil {
		return err
	}
	var lastErr error
	ok := 0
	for _, dev := range devs {
		var err error
		if v1 {
			for file, v := range map[string]*int64{"blkio.throttle.read_bps_device": l.IOBps, "blkio.throttle.write_bps_device": l.IOBps, "blkio.throttle.read_iops_device": l.IOIops, "blkio.throttle.write_iops_device": l.IOIops} {
				if v != nil && err == nil {
					err = os.WriteFile(filepath.Join(dir, file), []byte(dev+" "+strconv.FormatInt(*v, 10)), 0)
				}
			}
		} else {
			val := dev
			if l.IOBps != nil {
				val += fmt.Sprintf(" rbps=%d wbps=%d", *l.IOBps, *l.IOBps)
			}
			if l.IOIops != nil {
				val += fmt.Sprintf(" riops=%d wiops=%d", *l.IOIops, *l.IOIops)
			}
			err = os.WriteFile(filepath.Join(dir, "io.max"), []byte(val), 0)
		}
		if err != nil {
			lastErr = fmt.Errorf("device %s: %w", dev, err)
			continue
		}
		ok++
	}
	if ok == 0 {
		if lastErr == nil {
			lastErr = errors.New("the host has no block device")
		}
		return lastErr
	}
	return nil
}

// BlockDevices lists the MAJ:MIN numbers of the host's block devices
// (whole disks, as /sys/block has them).
func BlockDevices() ([]string, error) {
	entries, err := os.ReadDir("/sys/block")
	if err != nil {
		return nil, err
	}
	var devs []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "dev"))
		if err != nil {
			continue
		}
		devs = append(devs, strings.TrimSpace(string(data)))
	}
	return devs, nil
}

// delegated are the files of a v2 group its delegatee may write
// (Documentation/admin-guide/cgroup-v2.rst, "Model of Delegation"): with
// the directory, it may make groups below and move its processes among
// them; the group's own limits stay the host's.
var delegated = []string{"cgroup.procs", "cgroup.threads", "cgroup.subtree_control"}

// Delegate gives the v2 group dir to uid and gid: the root of a pod's
// user namespace, for an app's group.
func Delegate(dir string, uid, gid int) error {
	for _, f := range append([]string{""}, delegated...) {
		p := filepath.Join(dir, f)
		if err := os.Lchown(p, uid, gid); err != nil && !(f != "" && errors.Is(err, os.ErrNotExist)) {
			return fmt.Errorf("cgroup: delegate %s: %w", dir, err)
		}
	}
	return nil
}
