// Package cgroup gives each pod a control group: created before the pod's
// first process (which the kernel places in it as it clones, with cgroup
// v2), used to find and kill every process of the pod, and removed with
// the pod. It works with a pure cgroup v2 hierarchy (the Kurma OS), with
// the unified hierarchy of a hybrid host (/sys/fs/cgroup/unified, used
// for tracking and killing even without controllers), and with cgroup v1
// hierarchies otherwise, where a pod has a group in each.
package cgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Version is the cgroup version a Hierarchy uses.
type Version int

const (
	V2 Version = 2
	V1 Version = 1
)

// Hierarchy is where pods' groups are made: Parent under the v2 mount, or
// under each v1 hierarchy.
type Hierarchy struct {
	Version Version
	// Roots are the mount points: one for v2, one per hierarchy for v1.
	Roots []string
	// Parent is the group, relative to each root, pods' groups go under.
	Parent string
	// Controllers maps each resource controller pods' limits use
	// ("memory", "cpu", "io", "pids") to the root of the hierarchy that
	// has it: the v2 root, or a v1 hierarchy (a hybrid host's v1
	// hierarchies hold the controllers its v2 one lacks). A controller
	// the host lacks is missing.
	Controllers map[string]string
}

// Detect finds the hierarchy to use: cgroup v2 mounted on /sys/fs/cgroup,
// else the unified v2 hierarchy of a hybrid layout if a group can be made
// in it, else the v1 hierarchies.
func Detect(parent string) (*Hierarchy, error) {
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(root, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		h := &Hierarchy{Version: V2, Roots: []string{root}, Parent: parent}
		if err := h.init(); err == nil {
			return h, nil
		}
	}
	return NewV1(parent)
}

// NewV1 uses the cgroup v1 hierarchies even where v2 is available.
func NewV1(parent string) (*Hierarchy, error) {
	roots, err := V1Roots()
	if err != nil {
		return nil, err
	}
	if len(roots) == 0 {
		return nil, errors.New("cgroup: no cgroup v1 hierarchy is mounted")
	}
	h := &Hierarchy{Version: V1, Roots: roots, Parent: parent}
	if err := h.init(); err != nil {
		return nil, err
	}
	return h, nil
}

// v1Controllers maps the controllers of the mounted v1 hierarchies to
// their mount points ("io" is v1's blkio).
func v1Controllers() map[string]string {
	ctl := map[string]string{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ctl
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		i := slices.Index(fields, "-")
		if i < 0 || i+3 >= len(fields) || fields[i+1] != "cgroup" || fields[3] != "/" {
			continue
		}
		for _, opt := range strings.Split(fields[i+3], ",") {
			if opt == "blkio" {
				opt = "io"
			}
			if slices.Contains(resourceControllers, opt) {
				if _, ok := ctl[opt]; !ok {
					ctl[opt] = fields[4]
				}
			}
		}
	}
	return ctl
}

// resourceControllers are the controllers pods' limits use.
var resourceControllers = []string{"memory", "cpu", "io", "pids"}

// V1Roots lists the mount points of the cgroup v1 hierarchies.
func V1Roots() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var roots []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		i := slices.Index(fields, "-")
		if i < 0 || i+1 >= len(fields) || fields[i+1] != "cgroup" || fields[3] != "/" {
			continue
		}
		roots = append(roots, fields[4])
	}
	return roots, sc.Err()
}

// init makes the parent group in every root and finds the controllers:
// a v2 hierarchy's are enabled from its root down to the parent, the
// others are taken from v1 hierarchies.
func (h *Hierarchy) init() error {
	h.Controllers = map[string]string{}
	if h.Version == V2 {
		if err := h.enableV2(); err != nil {
			return err
		}
	}
	for c, root := range v1Controllers() {
		if _, ok := h.Controllers[c]; !ok && (h.Version == V1 || !slices.Contains(h.Roots, root)) {
			h.Controllers[c] = root
			if err := os.MkdirAll(filepath.Join(root, h.Parent), 0o755); err != nil {
				return fmt.Errorf("cgroup: %w", err)
			}
		}
	}
	for _, root := range h.Roots {
		dir := filepath.Join(root, h.Parent)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		if h.Version == V1 {
			// A new cpuset group has no CPUs and no memory nodes: let
			// children inherit the parent's.
			if _, err := os.Stat(filepath.Join(dir, "cpuset.cpus")); err == nil {
				if err := inheritCpuset(root, dir); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, "cgroup.clone_children"), []byte("1"), 0); err != nil {
					return fmt.Errorf("cgroup: %w", err)
				}
			}
		}
	}
	return nil
}

// enableV2 makes the parent group and enables, at each level from the
// root down to it, the resource controllers the root has.
func (h *Hierarchy) enableV2() error {
	root := h.Roots[0]
	data, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	var enable []string
	for _, c := range strings.Fields(string(data)) {
		if slices.Contains(resourceControllers, c) {
			enable = append(enable, c)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, h.Parent), 0o755); err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	dir := root
	for _, part := range append([]string{""}, strings.Split(h.Parent, "/")...) {
		dir = filepath.Join(dir, part)
		for _, c := range enable {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
				return fmt.Errorf("cgroup: enable %s in %s: %w", c, dir, err)
			}
		}
	}
	for _, c := range enable {
		h.Controllers[c] = root
	}
	return nil
}

func inheritCpuset(root, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		if strings.TrimSpace(string(cur)) != "" {
			continue
		}
		val, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), val, 0); err != nil {
			return fmt.Errorf("cgroup: %s: %w", f, err)
		}
	}
	return nil
}

// Group is one pod's control group (in each v1 hierarchy). With v2 the
// pod's init is in its leaf InitLeaf and the apps below AppsGroup, each
// in a leaf of its own (see Setup), so that controllers can be enabled
// for the apps and the pod's limits leave the init out.
type Group struct {
	Version Version
	// Dirs are the group's directories: the v2 one, then on a hybrid
	// host those in the v1 hierarchies of the controllers v2 lacks
	// (made only when a limit needs them); or one per v1 hierarchy.
	Dirs []string
	h    *Hierarchy
}

// InitLeaf is the v2 leaf group of a pod's init.
const InitLeaf = "init"

// Create makes the group name under the parent (and its init leaf with
// v2). It fails if it exists.
func (h *Hierarchy) Create(name string) (*Group, error) {
	g := h.Group(name)
	dirs := g.Dirs
	if h.Version == V2 {
		dirs = []string{g.Dirs[0], filepath.Join(g.Dirs[0], InitLeaf)}
	}
	for i, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = os.Remove(dirs[j]) // undoing a partial creation
			}
			return nil, fmt.Errorf("cgroup: %w", err)
		}
	}
	return g, nil
}

// Group is the group name under the parent, existing or not.
func (h *Hierarchy) Group(name string) *Group {
	g := &Group{Version: h.Version, h: h}
	for _, root := range h.Roots {
		g.Dirs = append(g.Dirs, filepath.Join(root, h.Parent, name))
	}
	if h.Version == V2 {
		for _, c := range resourceControllers {
			if root, ok := h.Controllers[c]; ok && root != h.Roots[0] {
				d := filepath.Join(root, h.Parent, name)
				if !slices.Contains(g.Dirs, d) {
					g.Dirs = append(g.Dirs, d)
				}
			}
		}
	}
	return g
}

// Open opens the v2 group's init leaf, for clone(2)'s CLONE_INTO_CGROUP
// (syscall.SysProcAttr.CgroupFD). It is nil, nil for v1.
func (g *Group) Open() (*os.File, error) {
	if g.Version != V2 {
		return nil, nil
	}
	return os.OpenFile(filepath.Join(g.Dirs[0], InitLeaf), os.O_RDONLY|syscall.O_DIRECTORY, 0)
}

// Add moves a process into the group (in every hierarchy).
func (g *Group) Add(pid int) error {
	for _, d := range g.Dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("cgroup: add %d to %s: %w", pid, d, err)
		}
	}
	return nil
}

// Procs lists the processes in the group. A group that does not exist
// has none.
func (g *Group) Procs() ([]int, error) {
	seen := map[int]bool{}
	var pids []int
	for _, top := range g.Dirs {
		for _, d := range tree(top) {
			data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("cgroup: %w", err)
			}
			for _, f := range strings.Fields(string(data)) {
				pid, err := strconv.Atoi(f)
				if err == nil && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids, nil
}

// tree lists dir and the groups below it, deepest first.
func tree(dir string) []string {
	var dirs []string
	entries, _ := os.ReadDir(dir) // a group that does not exist has none
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, tree(filepath.Join(dir, e.Name()))...)
		}
	}
	return append(dirs, dir)
}

// Kill kills every process in the group and waits until it is empty.
// With cgroup v2 the kernel does it (cgroup.kill), forks included; with
// v1 the processes are signalled until none is left (the freezer stops
// forks meanwhile when it is mounted).
func (g *Group) Kill(ctx context.Context) error {
	if g.Version == V2 {
		err := os.WriteFile(filepath.Join(g.Dirs[0], "cgroup.kill"), []byte("1"), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cgroup: kill %s: %w", g.Dirs[0], err)
		}
	}
	freezer := g.freezer()
	if freezer != "" {
		_ = os.WriteFile(filepath.Join(freezer, "freezer.state"), []byte("FROZEN"), 0)   // best effort: the loop below kills forks too
		defer os.WriteFile(filepath.Join(freezer, "freezer.state"), []byte("THAWED"), 0) // killed processes die once thawed
	}
	for {
		pids, err := g.Procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL) // it may be gone already
		}
		if freezer != "" {
			_ = os.WriteFile(filepath.Join(freezer, "freezer.state"), []byte("THAWED"), 0) // let SIGKILL be delivered
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup: processes left in %s: %w", g.Dirs[0], ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (g *Group) freezer() string {
	if g.Version != V1 {
		return ""
	}
	for _, d := range g.Dirs {
		if _, err := os.Stat(filepath.Join(d, "freezer.state")); err == nil {
			return d
		}
	}
	return ""
}

// Remove removes the group; it must be empty (see Kill). A group already
// gone is not an error.
func (g *Group) Remove(ctx context.Context) error {
	var all []string
	for _, top := range g.Dirs {
		all = append(all, tree(top)...)
	}
	for _, d := range all {
		for {
			err := unix.Rmdir(d)
			if err == nil || err == unix.ENOENT {
				break
			}
			if err != unix.EBUSY {
				return fmt.Errorf("cgroup: remove %s: %w", d, err)
			}
			// A killed process leaves the group a moment after it dies.
			select {
			case <-ctx.Done():
				return fmt.Errorf("cgroup: remove %s: busy: %w", d, ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return nil
}

// Exists reports whether the group's directory exists (in any hierarchy).
func (g *Group) Exists() bool {
	for _, d := range g.Dirs {
		if _, err := os.Stat(d); err == nil {
			return true
		}
	}
	return false
}
