package boot

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// pivotCheckArg is argv[1] of the child that proves pivot_root works
// after switch_root: re-executed from PID 1 in a new mount namespace, it
// pivots into a fresh tmpfs and detaches the old root.
const pivotCheckArg = "kurma-pivot-check"

// pivotCheck is the child's side; it returns the exit code.
func pivotCheck() int {
	fail := func(op string, err error) int {
		fmt.Fprintf(os.Stderr, "kurma: pivot check: %s: %v\n", op, err)
		return 1
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make / private", err)
	}
	dir, err := os.MkdirTemp("/tmp", "pivot-check-")
	if err != nil {
		return fail("mkdir", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		return fail("mount tmpfs", err)
	}
	if err := os.Mkdir(dir+"/old", 0o700); err != nil {
		return fail("mkdir old", err)
	}
	if err := unix.PivotRoot(dir, dir+"/old"); err != nil {
		return fail("pivot_root", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fail("chdir", err)
	}
	if err := unix.Unmount("/old", unix.MNT_DETACH); err != nil {
		return fail("detach old root", err)
	}
	return 0
}

// checkPivotRoot runs pivotCheck in a new mount namespace.
func (m *Machine) checkPivotRoot() error {
	cmd := exec.Command("/proc/self/exe", pivotCheckArg)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
	done, err := m.reaper.Start(cmd)
	if err != nil {
		return err
	}
	ws := <-done
	_ = cmd.Process.Release() // reaped already; this frees the pidfd
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("pivot check: %v", describeWait(ws))
	}
	return nil
}

func describeWait(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

// debugDump prints, with kurma.debug=1, the facts the end-to-end tests
// check from inside the guest.
func (m *Machine) debugDump() {
	m.log.Debugf("pid=%d", os.Getpid())
	m.log.Debugf("root-fs=%s", fsTypeName("/"))
	if err := m.checkPivotRoot(); err != nil {
		m.log.Debugf("pivot-root=failed: %v", err)
	} else {
		m.log.Debugf("pivot-root=ok")
	}
	m.log.Debugf("modules=%s", strings.Join(procModules(), ","))
	if data, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control"); err == nil {
		m.log.Debugf("cgroup-controllers=%s", strings.Join(strings.Fields(string(data)), ","))
	}
	m.log.Debugf("mounts=%s", strings.Join(mountPoints(), ","))
	m.log.Debugf("routes=%s", strings.Join(ipv4Routes(), ","))
	m.log.Debugf("exe=%s", readlink("/proc/self/exe"))
}

// ipv4Routes lists the main table's IPv4 routes as ip(8) shows them:
// "default via 10.0.2.2 dev eth0", "10.0.2.0/24 dev eth0".
func ipv4Routes() []string {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, r := range routes {
		dst := "default"
		if r.Dst != nil && !isDefaultNet(r.Dst) {
			dst = r.Dst.String()
		}
		s := dst
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			s += " dev " + l.Attrs().Name
		}
		if r.Priority != 0 {
			s += fmt.Sprintf(" metric %d", r.Priority)
		}
		out = append(out, s)
	}
	return out
}

func isDefaultNet(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

func readlink(p string) string {
	s, err := os.Readlink(p)
	if err != nil {
		return err.Error()
	}
	return s
}

func fsTypeName(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return err.Error()
	}
	switch st.Type {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.RAMFS_MAGIC:
		return "ramfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	}
	return fmt.Sprintf("%#x", st.Type)
}

// procModules lists the loaded modules, sorted.
func procModules() []string {
	f, err := os.Open("/proc/modules")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mods []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if name, _, ok := strings.Cut(s.Text(), " "); ok {
			mods = append(mods, name)
		}
	}
	sort.Strings(mods)
	return mods
}

func mountPoints() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) > 4 && sep > 0 && sep+1 < len(fields) {
			out = append(out, filepath.Clean(unescapeMountPath(fields[4]))+":"+fields[sep+1])
		}
	}
	return out
}
