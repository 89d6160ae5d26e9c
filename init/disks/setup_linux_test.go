package disks

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// The kernel log reader returns what was logged about a device since it
// was opened, and returns at the end of the log instead of waiting for
// the next record (it hung the disks phase after a failed mount).
func TestKernelLogAbout(t *testing.T) {
	if os.Getenv("KURMA_TEST_PRIVILEGED") != "1" || os.Getuid() != 0 {
		t.Skip("writes to the kernel log: run as root with KURMA_TEST_PRIVILEGED=1 (make test-privileged)")
	}
	kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no kernel log to write: %v", err)
	}
	defer kmsg.Close()
	name := fmt.Sprintf("kurmatest%d", os.Getpid())
	_, _ = fmt.Fprintf(kmsg, "before (%s): not to be seen\n", name)
	k := openKernelLog()
	if k.fd < 0 {
		t.Skip("the kernel log cannot be read here")
	}
	defer k.Close()
	_, _ = fmt.Fprintf(kmsg, "kurma test (%s): seen\n", name)
	_, _ = fmt.Fprintf(kmsg, "another device: not about it\n")
	done := make(chan []string, 1)
	go func() { done <- k.about(name) }()
	select {
	case got := <-done:
		if len(got) != 1 || got[0] != "kurma test ("+name+"): seen" {
			t.Errorf("about(%s) = %q, want the one record after opening", name, got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("about waited for more of the kernel log instead of returning at its end")
	}
	go func() { done <- k.about(name) }()
	select {
	case got := <-done:
		if len(got) != 0 {
			t.Errorf("a second about = %q, want nothing new", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("about at the end of the kernel log waited instead of returning")
	}
}

// xfs_growfs prints the geometry before the growth, then the change.
func TestXFSGrown(t *testing.T) {
	out := `meta-data=/dev/vde               isize=512    agcount=4, agsize=19200 blks
         =                       sectsz=512   attr=2, projid32bit=1
         =                       crc=1        finobt=1, sparse=1, rmapbt=0
data     =                       bsize=4096   blocks=76800, imaxpct=25
         =                       sunit=0      swidth=0 blks
naming   =version 2              bsize=4096   ascii-ci=0, ftype=1
log      =internal log           bsize=4096   blocks=1368, version=2
realtime =none                   extsz=4096   blocks=0, rtextents=0
data blocks changed from 76800 to 102400
`
	if got, ok := xfsGrown([]byte(out)); !ok || got != 400<<20 {
		t.Errorf("xfsGrown = %d, %v; want 400 MiB", got, ok)
	}
	if _, ok := xfsGrown([]byte("data     =   bsize=4096   blocks=76800\n")); ok {
		t.Error("xfsGrown without the change line says it knows the size")
	}
}
