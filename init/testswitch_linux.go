package boot

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/kurmaos/kurma/containers/atomicfile"
	"github.com/kurmaos/kurma/init/disks"
)

// Switches of the end-to-end tests (kurma.test.*), read with
// kurma.debug and kurma.test.fail-phase before the configuration:
//
//	kurma.test.echo=PORT   a TCP echo server on PORT, from the end of the
//	                       boot: a host-side test reaches the guest through
//	                       QEMU's hostfwd
//	kurma.test.marker=NAME /var/lib/kurma/volumes/NAME: written when
//	                       missing, its content shown when there (a disk
//	                       kept across boots)
type testSwitches struct {
	echo   string
	marker string
}

// runTestSwitches starts what the switches ask for, before the ready
// line.
func (m *Machine) runTestSwitches() {
	if m.test.echo != "" {
		if err := m.testEcho(m.test.echo); err != nil {
			m.log.Errorf("test: echo: %v", err)
		}
	}
	if m.test.marker != "" {
		m.testMarker(m.test.marker)
	}
}

func (m *Machine) testEcho(port string) error {
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	m.log.Infof("test: echo server on %s", l.Addr())
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c) // until the peer closes
			}()
		}
	}()
	return nil
}

func (m *Machine) testMarker(name string) {
	p := filepath.Join(disks.DefaultRoot, "volumes", filepath.Base(name))
	if data, err := os.ReadFile(p); err == nil {
		m.log.Infof("test: marker %s found: %s", p, strings.TrimSpace(string(data)))
		return
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	content := fmt.Sprintf("written by boot %s", strings.TrimSpace(string(boot)))
	if err := atomicfile.Write(p, []byte(content+"\n"), 0o644); err != nil {
		m.log.Errorf("test: marker: %v", err)
		return
	}
	m.log.Infof("test: marker %s written: %s", p, content)
}
