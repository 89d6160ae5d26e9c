package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/tests/qemu"
)

const bootTimeout = 2 * time.Minute

// TestBoot boots the image and checks, from the init's debug dump, that
// init is PID 1, that / is a tmpfs on which pivot_root works in a new mount
// namespace, that the qemu profile's modules are loaded with their
// dependencies, that the timeline is printed, and that ctrl-alt-del
// powers the machine off without a panic. The configured NTP server (an
// SNTP server in the guest whose clock is a day ahead: QEMU's user
// network reaches no UDP server of the host) steps the clock, and the
// kernel then writes the RTC.
func TestBoot(t *testing.T) {
	vm := qemu.Start(t, qemu.Options{
		Append: []string{"kurma.debug=1", "kurma.test.ntp-ahead=24h"},
		InitrdFiles: map[string][]byte{"/etc/kurma/config.yaml": []byte(`images:
  offline_dirs: [/usr/share/kurma/images]
services:
  ntp:
    servers: ["127.0.0.1:1123"]
`)},
		// An empty PCIe slot, for the hot plug below.
		Args: []string{"-device", "pcie-root-port,id=rp1,chassis=1,slot=1"},
	})
	vm.Expect(t, `kurma-debug: pid=1\b`, bootTimeout)
	vm.Expect(t, `kurma-debug: root-fs=tmpfs`, time.Minute)
	vm.Expect(t, `kurma-debug: pivot-root=ok`, time.Minute)
	mods := vm.Expect(t, `kurma-debug: modules=(\S+)`, time.Minute)[1]
	loaded := strings.Split(mods, ",")
	// virtio_net pulls in net_failover and failover; ext4 its soft
	// dependency crc32c; the AHCI controller of q35 its driver by cold plug.
	for _, want := range []string{"virtio_pci", "virtio_net", "net_failover", "failover", "virtio_rng", "ext4", "jbd2", "crc32c_generic", "overlay", "ahci"} {
		if !contains(loaded, want) {
			t.Errorf("module %s is not loaded; /proc/modules has %s", want, mods)
		}
	}
	// A driver with no device is not loaded: cold plug found no e1000(e).
	if contains(loaded, "e1000") || contains(loaded, "e1000e") {
		t.Errorf("e1000 or e1000e is loaded without such a NIC")
	}
	vm.Expect(t, `kurma-debug: cgroup-controllers=\S*memory`, time.Minute)
	vm.Expect(t, `kurma: boot timeline:`, time.Minute)
	for _, phase := range []string{"early", "switch-root", "config", "modules", "cgroups"} {
		vm.Expect(t, `kurma:   `+phase+` +\d+ ms\r?\n`, time.Minute)
	}
	vm.Expect(t, `kurma:   total +\d+ ms since kernel start`, time.Minute)
	vm.Expect(t, `kurma: ready`, time.Minute)
	rtc := vm.ExpectSeen(t, `kurma: test: rtc follows the clock: (\S+)`, time.Minute)[1]
	if at, err := time.Parse(time.RFC3339, rtc); err != nil || at.Sub(time.Now().Add(24*time.Hour)).Abs() > 10*time.Minute {
		t.Errorf("the RTC reads %s (%v), want a day ahead of the host's clock", rtc, err)
	}
	if !regexp.MustCompile(`kurma: time: clock stepped by 2[34]h\S* from 127\.0\.0\.1:1123`).MatchString(vm.Console()) {
		t.Errorf("the clock was not stepped by a day from the configured server")
	}
	if strings.Contains(vm.Console(), "FAILED") {
		t.Errorf("a phase failed")
	}

	// Hot plug: a NIC plugged in after the boot gets its driver.
	vm.Monitor(t, "netdev_add user,id=hp0,restrict=on")
	vm.Monitor(t, "device_add e1000e,netdev=hp0,bus=rp1,id=hpnic")
	vm.Expect(t, `kurma: devices: /devices/\S+ \(pci:v00008086d000010D3\S*\): loaded e1000e`, time.Minute)

	vm.SendKey(t, "ctrl-alt-delete")
	vm.Expect(t, `kurma: SIGINT received`, time.Minute)
	vm.Expect(t, `kurma: poweroff now`, time.Minute)
	vm.Expect(t, `reboot: Power down`, time.Minute)
	vm.WaitExit(t, time.Minute)
}

// TestEmergencyMode fails an essential phase on purpose: the boot stops in
// emergency mode with the phase named on the console, PID 1 stays up (no
// kernel panic), and ctrl-alt-del still shuts down. root= makes the
// kernel's rootfs a ramfs, so this boot also covers switch_root's copying
// path onto a tmpfs.
func TestEmergencyMode(t *testing.T) {
	vm := qemu.Start(t, qemu.Options{Append: []string{
		"root=/dev/ram0", "kurma.debug=1", "kurma.test.fail-phase=cgroups",
	}})
	vm.Expect(t, `kurma: error: phase cgroups failed: failed on purpose`, bootTimeout)
	vm.Expect(t, `kurma: error: emergency mode: essential phase cgroups failed`, time.Minute)
	vm.Expect(t, `kurma-debug: pid=1\b`, time.Minute)
	vm.Expect(t, `kurma-debug: root-fs=tmpfs`, time.Minute)
	vm.Expect(t, `kurma-debug: pivot-root=ok`, time.Minute)
	vm.Expect(t, `kurma:   cgroups +\d+ ms  FAILED`, time.Minute)
	vm.Expect(t, `emergency mode: the boot stopped`, time.Minute)
	// PID 1 is alive: give it time to die if it were to, then shut down.
	time.Sleep(2 * time.Second)
	if strings.Contains(vm.Console(), "kurma: ready") {
		t.Error("the boot reached ready after an essential phase failed")
	}
	vm.SendKey(t, "ctrl-alt-delete")
	vm.Expect(t, `reboot: Power down`, time.Minute)
	vm.WaitExit(t, time.Minute)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
