package boot

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/atomicfile"
	"github.com/kurmaos/kurma/init/disks"
	"github.com/kurmaos/kurma/internal/ntptest"
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
//	kurma.test.ntp-ahead=D an SNTP server on UDP port 1123 whose clock is
//	                       D (a Go duration) ahead of the machine's, from
//	                       the time phase; from the ready line the RTC is
//	                       watched until it follows the clock
type testSwitches struct {
	echo     string
	marker   string
	ntpAhead time.Duration
}

// testNTPPort is the port of kurma.test.ntp-ahead's server.
const testNTPPort = "1123"

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
	if m.test.ntpAhead != 0 {
		go m.testWatchRTC()
	}
}

// testNTP starts kurma.test.ntp-ahead's SNTP server.
func (m *Machine) testNTP() {
	if m.test.ntpAhead == 0 {
		return
	}
	pc, err := net.ListenPacket("udp", ":"+testNTPPort)
	if err != nil {
		m.log.Errorf("test: ntp: %v", err)
		return
	}
	m.log.Infof("test: SNTP server on %s, %s ahead", pc.LocalAddr(), m.test.ntpAhead)
	go ntptest.Serve(pc, m.test.ntpAhead)
}

// testWatchRTC reports when the hardware clock follows the system clock
// once the kernel has been told it is synchronised (it writes the RTC
// then), or that it did not within 30 s.
func (m *Machine) testWatchRTC() {
	deadline := time.Now().Add(30 * time.Second)
	var rtc int64
	for time.Now().Before(deadline) {
		data, err := os.ReadFile("/sys/class/rtc/rtc0/since_epoch")
		if err != nil {
			m.log.Errorf("test: rtc: %v", err)
			return
		}
		rtc, _ = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		var tx unix.Timex
		state, err := unix.Adjtimex(&tx)
		synced := err == nil && state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
		if d := time.Now().Unix() - rtc; synced && d >= -2 && d <= 2 {
			m.log.Infof("test: rtc follows the clock: %s", time.Unix(rtc, 0).UTC().Format(time.RFC3339))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	m.log.Errorf("test: rtc %s, clock %s: the RTC was not written", time.Unix(rtc, 0).UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
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
