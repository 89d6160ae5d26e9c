package apiserver

import (
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestMain lets the test binary serve as the unprivileged client of
// TestSocketRefusesOthers.
func TestMain(m *testing.M) {
	if path := os.Getenv("KURMA_TEST_DIAL"); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func privileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv("KURMA_TEST_PRIVILEGED") != "1" {
		t.Skip("needs root: run with KURMA_TEST_PRIVILEGED=1 as root (make test-privileged)")
	}
}

// TestSocketRefusesOthers checks the socket's owner and group, and that a
// user outside the group cannot connect (EACCES) while a member can.
func TestSocketRefusesOthers(t *testing.T) {
	privileged(t)
	grp, err := user.LookupGroup("kurma")
	if err != nil {
		if out, err := exec.Command("groupadd", "--system", "kurma").CombinedOutput(); err != nil {
			t.Fatalf("groupadd kurma: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("groupdel", "kurma").Run() })
		if grp, err = user.LookupGroup("kurma"); err != nil {
			t.Fatal(err)
		}
	}
	gid, _ := strconv.Atoi(grp.Gid)
	// t.TempDir's parent is 0700: nobody must reach the socket's directory.
	dir, err := os.MkdirTemp("", "kurma-socket-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kurma.sock")
	l, err := ListenUnix(path, "kurma")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 || int(st.Gid) != gid || st.Mode&0o777 != 0o660 {
		t.Errorf("socket %o uid %d gid %d, want 0660 root:kurma(%d)", st.Mode&0o777, st.Uid, st.Gid, gid)
	}
	// The test binary lives in a 0700 build directory: give nobody a copy.
	exe := filepath.Join(dir, "dial")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	dial := func(groups []uint32) (string, error) {
		cmd := exec.Command(exe)
		cmd.Env = []string{"KURMA_TEST_DIAL=" + path}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: groups}}
		out, err := cmd.Output()
		return string(out), err
	}
	if out, err := dial(nil); err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("nobody connected (%v): %s", err, out)
	}
	if out, err := dial([]uint32{uint32(gid)}); err != nil {
		t.Errorf("a member of kurma could not connect: %v %s", err, out)
	}
}
