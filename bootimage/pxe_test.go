package bootimage

import (
	"strings"
	"testing"
)

func TestIPXEScript(t *testing.T) {
	m := testMedia()
	got, err := m.IPXEScript(PXE{ConfigURL: "http://${next-server}:8080/config/${mac}"})
	if err != nil {
		t.Fatal(err)
	}
	want := `#!ipxe
# Kurma 1.2, booted over the network. iPXE fetches the kernel and the
# initramfs from where it fetched this script (TFTP or HTTP). initrd=
# names the initramfs for the kernel's EFI stub, which needs it under UEFI.
echo Kurma 1.2: booting from ${netX/mac}
set kurma-config-url http://${next-server}:8080/config/${netX/mac}
echo Kurma 1.2: configuration ${kurma-config-url}
kernel vmlinuz initrd=initrd.img console=ttyS0,115200n8 loglevel=4 kurma.config.url=${kurma-config-url}
initrd initrd.img
boot
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	plain, err := m.IPXEScript(PXE{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain, "config") {
		t.Errorf("without a config URL, the script mentions one:\n%s", plain)
	}
	if !strings.Contains(plain, "\nkernel vmlinuz initrd=initrd.img console=ttyS0,115200n8 loglevel=4\n") {
		t.Errorf("kernel line:\n%s", plain)
	}
}

func TestIPXEScriptRejects(t *testing.T) {
	tests := []struct {
		cmdline, url, want string
	}{
		{"a=${b}", "", "iPXE would expand"},
		{"", "ftp://x/", "not an http or https URL"},
		{"", "http://x/a b", "space"},
	}
	for _, tc := range tests {
		m := testMedia()
		m.Cmdline = tc.cmdline
		if _, err := m.IPXEScript(PXE{ConfigURL: tc.url}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cmdline %q, url %q: error %v, want %q", tc.cmdline, tc.url, err, tc.want)
		}
	}
}
