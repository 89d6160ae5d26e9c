package bootimage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// The files of a PXE tree.
const (
	PXEScript     = "boot.ipxe"     // the iPXE script: DHCP's boot file name for iPXE
	PXEKernel     = "vmlinuz"       // the kernel
	PXEInitrd     = "initrd.img"    // the initramfs
	PXEBIOSLoader = "undionly.kpxe" // iPXE for BIOS PXE firmware, which then runs boot.ipxe
	PXEEFILoader  = "snponly.efi"   // iPXE for UEFI PXE firmware, likewise
)

// iPXE binaries of Debian's ipxe package, for firmware whose PXE ROM is
// not iPXE: the DHCP server hands them out first (docs/booting.md).
var ipxeLoaders = map[string]string{
	PXEBIOSLoader: "/usr/lib/ipxe/undionly.kpxe",
	PXEEFILoader:  "/usr/lib/ipxe/snponly.efi",
}

// PXE says what the iPXE script adds to the kernel command line.
type PXE struct {
	// ConfigURL, if set, is passed to Kurma as kurma.config.url. iPXE
	// expands it before the kernel starts: ${mac} becomes the MAC
	// address of the interface that booted (iPXE's ${netX/mac}, in the
	// form Kurma's own ${mac} has: 52:54:00:12:34:56), and any other
	// ${name} is an iPXE setting (${uuid}, ${next-server}, ${netX/ip},
	// ${hostname} from DHCP).
	ConfigURL string
}

var ipxeTemplate = template.Must(template.New(PXEScript).Parse(`#!ipxe
# {{.Title}}, booted over the network. iPXE fetches the kernel and the
# initramfs from where it fetched this script (TFTP or HTTP). initrd=
# names the initramfs for the kernel's EFI stub, which needs it under UEFI.
echo {{.Title}}: booting from ${netX/mac}
{{- if .ConfigURL}}
set kurma-config-url {{.ConfigURL}}
echo {{.Title}}: configuration ${kurma-config-url}
{{- end}}
kernel {{.Kernel}} initrd={{.Initrd}} {{.Cmdline}}{{if .ConfigURL}} kurma.config.url=${kurma-config-url}{{end}}
initrd {{.Initrd}}
boot
`))

// IPXEScript renders the iPXE script of a PXE tree.
func (m Media) IPXEScript(p PXE) (string, error) {
	if strings.Contains(m.Cmdline, "${") {
		return "", fmt.Errorf("pxe: the kernel command line %q has ${, which iPXE would expand", m.Cmdline)
	}
	url := p.ConfigURL
	if url != "" {
		if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			return "", fmt.Errorf("pxe: config URL %q is not an http or https URL", url)
		}
		if strings.ContainsAny(url, " \t\n\"") {
			return "", fmt.Errorf("pxe: config URL %q has a space or a quote", url)
		}
		url = strings.ReplaceAll(url, "${mac}", "${netX/mac}")
	}
	return render(ipxeTemplate, struct {
		Title, Kernel, Initrd, Cmdline, ConfigURL string
	}{menuTitle + " " + m.version(), PXEKernel, PXEInitrd, m.Cmdline, url}), nil
}

// BuildPXE writes a PXE tree to dir: the iPXE script, the kernel and the
// initramfs, and the iPXE loaders for firmware that is not iPXE. Serve
// it over TFTP (and HTTP) with kurma-build serve-pxe or dnsmasq. Every
// file is dated at the epoch.
func BuildPXE(m Media, p PXE, dir string) error {
	if err := m.check(); err != nil {
		return err
	}
	script, err := m.IPXEScript(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{PXEKernel: m.Kernel, PXEInitrd: m.Initrd}
	for name, src := range ipxeLoaders {
		if err := needFile(src); err != nil {
			return err
		}
		files[name] = src
	}
	for _, name := range sortedKeys(files) {
		data, err := os.ReadFile(files[name])
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, name), data, m); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(dir, PXEScript), []byte(script), m)
}
