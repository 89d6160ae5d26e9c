package e2e

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/bootimage"
	"github.com/kurmaos/kurma/netboot"
	"github.com/kurmaos/kurma/tests/qemu"
)

// The boot path tests build each medium from the image (vmlinuz,
// initrd.img, cmdline) with the code behind make iso, make disk, make uki
// and make pxe, adding what every test boot adds to the command line
// (panic=-1 kurma.shutdown=poweroff, as qemu.Start does for -kernel
// boots). Each boots once, through the firmware, to `kurma: ready`, and
// powers off on ctrl-alt-del. The NIC is left out where the boot does not
// need it.

// Boot menu prompts, as syslinux's menu.c32 and GRUB print them.
const (
	syslinuxMenu = `Tab edits the command line, Enter boots`
	grubMenu     = `The highlighted entry will be executed automatically`
)

// media is the image as boot media are made from it.
func media(t *testing.T, timeout int, extra ...string) bootimage.Media {
	t.Helper()
	qemu.Skip(t)
	dir := qemu.ImageDir()
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		t.Fatalf("%v (run make image)", err)
	}
	if missing := bootimage.MissingTools(); len(missing) > 0 {
		t.Fatalf("boot media tools are missing (run scripts/setup): %s", strings.Join(missing, ", "))
	}
	args := append([]string{strings.TrimSpace(string(cmdline)), "panic=-1", "kurma.shutdown=poweroff"}, extra...)
	return bootimage.Media{
		Kernel:  filepath.Join(dir, "vmlinuz"),
		Initrd:  filepath.Join(dir, "initrd.img"),
		Cmdline: strings.Join(args, " "),
		Version: "e2e",
		Timeout: timeout,
		Epoch:   time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// readyAndPowerOff waits for the end of boot, then shuts down with
// ctrl-alt-del and waits for QEMU to exit cleanly.
func readyAndPowerOff(t *testing.T, vm *qemu.VM, start time.Time) {
	t.Helper()
	readyAsAndPowerOff(t, vm, start, `kurma: ready`)
}

// readyAsAndPowerOff is readyAndPowerOff with the ready line's pattern.
func readyAsAndPowerOff(t *testing.T, vm *qemu.VM, start time.Time, ready string) {
	t.Helper()
	vm.Expect(t, ready, bootTimeout)
	t.Logf("kurma: ready %.1f s after QEMU started", time.Since(start).Seconds())
	if strings.Contains(vm.Console(), "FAILED") {
		t.Errorf("a boot phase failed")
	}
	vm.SendKey(t, "ctrl-alt-delete")
	vm.Expect(t, `reboot: Power down`, time.Minute)
	vm.WaitExit(t, time.Minute)
}

// bootThroughMenu boots from firmware, waits for the boot menu's
// prompt, presses Enter and expects the boot to end as readyAndPowerOff
// does.
func bootThroughMenu(t *testing.T, opts qemu.Options, prompt string) {
	t.Helper()
	start := time.Now()
	opts.NoKernel, opts.NIC = true, "none"
	vm := qemu.Start(t, opts)
	vm.ExpectPrompt(t, prompt, bootTimeout)
	vm.SendKey(t, "ret")
	readyAndPowerOff(t, vm, start)
}

func buildISO(t *testing.T, m bootimage.Media) string {
	t.Helper()
	iso := filepath.Join(t.TempDir(), "kurma.iso")
	if err := bootimage.BuildISO(context.Background(), m, iso); err != nil {
		t.Fatal(err)
	}
	return iso
}

// TestISOBIOS boots the ISO from a CD-ROM under SeaBIOS through isolinux,
// and edits the command line at its menu: Tab, then kurma.debug=1, whose
// output proves the edit reached the kernel.
func TestISOBIOS(t *testing.T) {
	iso := buildISO(t, media(t, bootimage.DefaultTimeout))
	start := time.Now()
	vm := qemu.Start(t, qemu.Options{NoKernel: true, NIC: "none",
		Disks: []qemu.Disk{{Path: iso, Interface: "cdrom", ReadOnly: true}}})
	vm.Expect(t, `ISOLINUX`, bootTimeout)
	vm.ExpectPrompt(t, syslinuxMenu, time.Minute)
	vm.SendKey(t, "tab")
	vm.Type(t, " kurma.debug=1\n")
	vm.Expect(t, `kurma-debug: pid=1\b`, bootTimeout)
	readyAndPowerOff(t, vm, start)
}

// TestISOUEFI boots the ISO from a CD-ROM under OVMF through GRUB, and
// edits the command line at its menu: e opens the entry (GRUB shows a
// setparams line and a blank one above its body), down twice to the
// linux line, Ctrl-e to its end, kurma.debug=1, Ctrl-x boots.
func TestISOUEFI(t *testing.T) {
	iso := buildISO(t, media(t, bootimage.DefaultTimeout))
	start := time.Now()
	vm := qemu.Start(t, qemu.Options{NoKernel: true, NIC: "none", Firmware: "uefi",
		Disks: []qemu.Disk{{Path: iso, Interface: "cdrom", ReadOnly: true}}})
	vm.ExpectPrompt(t, grubMenu, bootTimeout)
	vm.SendKey(t, "e")
	vm.ExpectPrompt(t, `linux /boot/vmlinuz`, time.Minute)
	vm.SendKey(t, "down")
	vm.SendKey(t, "down")
	vm.SendKey(t, "ctrl-e")
	vm.Type(t, " kurma.debug=1")
	vm.SendKey(t, "ctrl-x")
	vm.Expect(t, `kurma-debug: pid=1\b`, bootTimeout)
	readyAndPowerOff(t, vm, start)
}

// TestISOUSBBIOS boots the ISO written to a USB stick (isohybrid): under
// SeaBIOS, isohdpfx.bin in its MBR starts isolinux; Enter at the menu
// boots.
func TestISOUSBBIOS(t *testing.T) {
	iso := buildISO(t, media(t, bootimage.DefaultTimeout))
	bootThroughMenu(t, qemu.Options{Disks: []qemu.Disk{{Path: iso, Interface: "usb", ReadOnly: true}}}, syslinuxMenu)
}

// TestISOUSBUEFI boots the ISO written to a USB stick under OVMF: the
// firmware finds GRUB on the EFI system partition of the stick's
// partition table, and GRUB finds the ISO 9660 tree on the whole stick.
func TestISOUSBUEFI(t *testing.T) {
	iso := buildISO(t, media(t, bootimage.DefaultTimeout))
	bootThroughMenu(t, qemu.Options{Firmware: "uefi", Disks: []qemu.Disk{{Path: iso, Interface: "usb", ReadOnly: true}}}, grubMenu)
}

func buildDisk(t *testing.T, m bootimage.Media, qcow2 bool) (string, string) {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, "kurma.img")
	if err := bootimage.BuildDisk(context.Background(), m, bootimage.Disk{DataSize: 64 << 20}, raw); err != nil {
		t.Fatal(err)
	}
	if !qcow2 {
		return raw, "raw"
	}
	q := filepath.Join(dir, "kurma.qcow2")
	if err := bootimage.ConvertQcow2(context.Background(), raw, q); err != nil {
		t.Fatal(err)
	}
	return q, "qcow2"
}

// TestDiskBIOS boots the raw disk image under SeaBIOS: gptmbr.bin, then
// syslinux from the EFI system partition; Enter at the menu boots.
func TestDiskBIOS(t *testing.T) {
	disk, format := buildDisk(t, media(t, bootimage.DefaultTimeout), false)
	bootThroughMenu(t, qemu.Options{Disks: []qemu.Disk{{Path: disk, Format: format}}}, syslinuxMenu)
}

// TestDiskUEFI boots the qcow2 disk image under OVMF: GRUB as
// EFI/BOOT/BOOTX64.EFI on the EFI system partition; Enter at the menu
// boots.
func TestDiskUEFI(t *testing.T) {
	disk, format := buildDisk(t, media(t, bootimage.DefaultTimeout), true)
	bootThroughMenu(t, qemu.Options{Firmware: "uefi", Disks: []qemu.Disk{{Path: disk, Format: format}}}, grubMenu)
}

// TestUKIUEFI boots the Unified Kernel Image as the firmware's removable
// media loader, EFI/BOOT/BOOTX64.EFI, with no boot loader: the stub
// starts the kernel with its embedded initramfs and command line, whose
// kurma.debug=1 shows.
func TestUKIUEFI(t *testing.T) {
	m := media(t, 0, "kurma.debug=1")
	dir := t.TempDir()
	uki := filepath.Join(dir, "kurma.efi")
	if err := bootimage.BuildUKI(m, uki); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "esp.img")
	if err := bootimage.BuildESPDisk(context.Background(), m.Epoch, map[string]string{"/EFI/BOOT/BOOTX64.EFI": uki}, disk); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	vm := qemu.Start(t, qemu.Options{NoKernel: true, NIC: "none", Firmware: "uefi",
		Disks: []qemu.Disk{{Path: disk}}})
	vm.Expect(t, `kurma-debug: pid=1\b`, bootTimeout)
	readyAndPowerOff(t, vm, start)
}

// pxeMAC is the test machine's MAC address; pxeConfig its configuration,
// served at the config URL the iPXE script passes.
const (
	pxeMAC    = "52:54:00:12:34:57"
	pxeConfig = "hostname: pxe-node-57\n"
)

// TestPXEBIOS boots the PXE tree through the iPXE ROM of QEMU's NIC under
// SeaBIOS, from QEMU's TFTP server. The iPXE script passes a config URL
// in which iPXE put the NIC's MAC address; the kernel prints its command
// line (loglevel=6). The configuration is served at that URL over HTTP
// by the handler behind kurma-build serve-pxe, reached from the guest
// through guestfwd at 10.0.2.100:80.
func TestPXEBIOS(t *testing.T) {
	testPXE(t, "")
}

// TestPXEUEFI is TestPXEBIOS under OVMF with iPXE's EFI ROM, where the
// kernel's EFI stub finds the initramfs by the initrd= argument and
// iPXE's echo reaches the serial console.
func TestPXEUEFI(t *testing.T) {
	testPXE(t, "uefi")
}

func testPXE(t *testing.T, firmware string) {
	m := media(t, 0, "loglevel=6")
	dir := t.TempDir()
	tree := filepath.Join(dir, "pxe")
	if err := bootimage.BuildPXE(m, bootimage.PXE{ConfigURL: "http://10.0.2.100/config/${mac}"}, tree); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(tree, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "config", pxeMAC), []byte(pxeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := netboot.Handler(tree, func(format string, a ...any) { t.Logf("http: "+format, a...) })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	configURL := "http://10.0.2.100/config/" + pxeMAC

	start := time.Now()
	vm := qemu.Start(t, qemu.Options{NoKernel: true, Firmware: firmware, Boot: "n",
		MAC: pxeMAC, TFTP: tree, BootFile: bootimage.PXEScript,
		GuestFwd: map[string]string{"10.0.2.100:80": srv.Listener.Addr().String()}})
	if firmware == "uefi" {
		vm.Expect(t, `Kurma e2e: configuration `+configURL, bootTimeout)
	}
	vm.Expect(t, `Kernel command line: .*initrd=initrd.img .*kurma.config.url=`+configURL, bootTimeout)
	// The per-MAC configuration came through the config URL datasource.
	readyAsAndPowerOff(t, vm, start, `kurma: ready \(hostname pxe-node-57\)`)
}
