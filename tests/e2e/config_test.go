package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kurmaos/kurma/tests/qemu"
)

// TestConfigLayers boots with an OEM disk (vfat, labelled KURMA_OEM)
// whose config.yaml has an invalid address on line 6 and sets a hostname,
// and a NoCloud volume (ISO9660, labelled cidata) whose user-data sets
// another hostname. The boot reaches ready; the console shows the OEM
// file's error with its line and field; the valid settings of both apply,
// the datasource's last.
func TestConfigLayers(t *testing.T) {
	qemu.Skip(t)
	dir := t.TempDir()
	oem := vfatImage(t, dir, "KURMA_OEM", map[string]string{"config.yaml": `# OEM configuration
hostname: from-oem
network:
  interfaces:
    - name: "eth9"
      addresses: ["10.0.0.1/33"]
sysctls:
  vm.swappiness: "7"
`})
	seed := isoImage(t, dir, "cidata", map[string]string{
		"meta-data": "instance-id: kurma-test\n",
		"user-data": "hostname: from-cidata\n",
	})
	vm := qemu.Start(t, qemu.Options{
		Append: []string{"kurma.debug=1"},
		Disks: []qemu.Disk{
			{Path: oem, Interface: "virtio"},
			{Path: seed, Interface: "virtio", ReadOnly: true},
		},
	})
	vm.Expect(t, `kurma: config: OEM disk /dev/vd[a-z] read`, bootTimeout)
	vm.Expect(t, `kurma: config: datasource nocloud: read /dev/vd[a-z]:user-data`, time.Minute)
	vm.Expect(t, `kurma: error: config: /dev/vd[a-z]:config.yaml:6: network.interfaces\[0\].addresses\[0\]: "10.0.0.1/33" is not a CIDR address`, time.Minute)
	vm.Expect(t, `kurma:   datasources +\d+ ms  FAILED`, time.Minute)
	vm.Expect(t, `kurma: ready \(hostname from-cidata\)`, time.Minute)
	vm.SendKey(t, "ctrl-alt-delete")
	vm.WaitExit(t, time.Minute)
}

// vfatImage makes a 4 MiB vfat image with the label and files, without
// mounting it (mtools).
func vfatImage(t *testing.T, dir, label string, files map[string]string) string {
	t.Helper()
	img := filepath.Join(dir, label+".img")
	run(t, "mkfs.vfat", "-C", "-n", label, img, "4096")
	for name, body := range files {
		src := filepath.Join(dir, label+"-"+name)
		if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "mcopy", "-i", img, src, "::"+name)
	}
	return img
}

// isoImage makes an ISO9660 image (Rock Ridge, Joliet) with the volume id
// and files.
func isoImage(t *testing.T, dir, label string, files map[string]string) string {
	t.Helper()
	root := filepath.Join(dir, label+"-root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, label+".iso")
	run(t, "xorriso", "-as", "mkisofs", "-quiet", "-V", label, "-J", "-R", "-o", img, root)
	return img
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
