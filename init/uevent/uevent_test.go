package uevent

import (
	"os"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	msg := []byte("add@/devices/pci0000:00/0000:00:03.0\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:03.0\x00SUBSYSTEM=pci\x00MODALIAS=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\x00SEQNUM=1234\x00")
	e, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if e.Action != "add" || e.Subsystem != "pci" || e.Seqnum != 1234 || e.Modalias != "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00" || e.DevPath != "/devices/pci0000:00/0000:00:03.0" {
		t.Errorf("parsed %+v", e)
	}
	for _, bad := range []string{"", "no header", "libudev\x00ACTION=add", "add@/x\x00DEVPATH=/x\x00", "add@/x\x00ACTION=add\x00DEVPATH=/x\x00SEQNUM=z\x00"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SEQNUM=1\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err == nil && (e.Action == "" || e.DevPath == "") {
			t.Errorf("accepted an event without action or devpath: %+v", e)
		}
	})
}

// TestListenSeesSyntheticEvent asks the kernel for a synthetic "change"
// event of the loopback device and waits for it on the socket.
func TestListenSeesSyntheticEvent(t *testing.T) {
	if os.Geteuid() != 0 || os.Getenv("KURMA_TEST_PRIVILEGED") != "1" {
		t.Skip("needs root: run with KURMA_TEST_PRIVILEGED=1 as root (make test-privileged)")
	}
	l, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.WriteFile("/sys/class/net/lo/uevent", []byte("change"), 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan Event, 1)
	go func() {
		for {
			e, err := l.Next()
			if err != nil {
				return
			}
			if e.Action == "change" && e.Subsystem == "net" && e.Env["INTERFACE"] == "lo" {
				done <- e
				return
			}
		}
	}()
	select {
	case e := <-done:
		if e.Seqnum == 0 {
			t.Errorf("no sequence number: %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no uevent for lo within 10s")
	}
}
