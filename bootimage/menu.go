package bootimage

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
)

// Every medium lays out its boot files the same way, on the ISO 9660
// tree or the EFI system partition:
//
//	/boot/vmlinuz, /boot/initrd.img       the kernel and initramfs
//	/boot/syslinux/                       syslinux or isolinux, its menu
//	/boot/grub/grub.cfg                   GRUB's menu (UEFI)
//	/EFI/BOOT/BOOTX64.EFI                 GRUB, on the EFI system partition
const (
	kernelPath   = "/boot/vmlinuz"
	initrdPath   = "/boot/initrd.img"
	syslinuxDir  = "/boot/syslinux"
	grubDir      = "/boot/grub"
	efiBootPath  = "/EFI/BOOT/BOOTX64.EFI"
	grubPrefix   = grubDir
	menuTitle    = "Kurma"
	syslinuxName = "syslinux.cfg" // isolinux reads it too, from its own directory
)

// syslinuxTemplate is the BIOS boot menu. menu.c32 draws it on the
// screen and, with SERIAL, on the first serial port; Tab edits the
// entry's command line, Enter boots it.
var syslinuxTemplate = template.Must(template.New("syslinux.cfg").Parse(`SERIAL 0 115200
UI menu.c32
PROMPT 0
TIMEOUT {{.Tenths}}
MENU TITLE {{.Title}}
MENU AUTOBOOT Booting in # second{,s}: Tab edits the command line, Enter boots.
DEFAULT kurma

LABEL kurma
  MENU LABEL {{.Title}}
  LINUX {{.Kernel}}
  INITRD {{.Initrd}}
  APPEND {{.Cmdline}}
`))

// grubTemplate is the UEFI boot menu: e edits the entry, Ctrl-x boots
// it. The firmware's console reaches the screen and, where the firmware
// redirects it (OVMF does), the serial port.
var grubTemplate = template.Must(template.New("grub.cfg").Parse(`set timeout={{.Timeout}}
set default=0
insmod all_video
menuentry '{{.Title}}' {
	linux {{.Kernel}} {{.GrubCmdline}}
	initrd {{.Initrd}}
}
`))

// grubEarlyTemplate is built into GRUB's EFI image: it finds the
// filesystem holding the menu by its UUID and reads the menu there.
var grubEarlyTemplate = template.Must(template.New("early.cfg").Parse(`search --no-floppy --set=root --fs-uuid {{.UUID}}
set prefix=($root){{.Prefix}}
configfile $prefix/grub.cfg
`))

type menuData struct {
	Title, Kernel, Initrd, Cmdline string
	Timeout                        int
}

func (m Media) menuData() menuData {
	return menuData{
		Title:   fmt.Sprintf("%s %s", menuTitle, m.version()),
		Kernel:  kernelPath,
		Initrd:  initrdPath,
		Cmdline: m.Cmdline,
		Timeout: m.Timeout,
	}
}

// Tenths is syslinux's timeout, in tenths of a second, where 0 waits
// for a key: a timeout of 0 seconds is a tenth.
func (d menuData) Tenths() int {
	switch {
	case d.Timeout < 0:
		return 0
	case d.Timeout == 0:
		return 1
	}
	return d.Timeout * 10
}

// GrubCmdline is the command line as GRUB's script language reads it:
// each word that holds a character GRUB would interpret ($, quotes,
// backslashes, ;, &, |, <, >, {, }) is single-quoted, so that GRUB passes
// the words to the kernel unchanged.
func (d menuData) GrubCmdline() string {
	return grubQuote(d.Cmdline)
}

// SyslinuxConfig renders the BIOS boot menu.
func (m Media) SyslinuxConfig() string { return render(syslinuxTemplate, m.menuData()) }

// GrubConfig renders the UEFI boot menu.
func (m Media) GrubConfig() string {
	d := m.menuData()
	if d.Timeout < 0 {
		d.Timeout = -1 // GRUB waits forever
	}
	return render(grubTemplate, d)
}

func grubEarlyConfig(uuid string) string {
	return render(grubEarlyTemplate, struct{ UUID, Prefix string }{uuid, grubPrefix})
}

func render(t *template.Template, data any) string {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		panic(fmt.Sprintf("template %s: %v", t.Name(), err)) // the templates are constants
	}
	return b.String()
}

// grubQuote quotes the words of a kernel command line for GRUB's
// script language. Words are split on spaces outside double quotes, as
// the kernel splits them.
func grubQuote(cmdline string) string {
	var words []string
	for _, w := range splitCmdline(cmdline) {
		if !strings.ContainsAny(w, "$\"'\\;&|<>{}#`*?[]~") {
			words = append(words, w)
			continue
		}
		words = append(words, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	return strings.Join(words, " ")
}

// splitCmdline splits a kernel command line into words as the kernel
// does: on spaces, except inside double quotes, which stay in the word.
func splitCmdline(s string) []string {
	var words []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case (r == ' ' || r == '\t') && !quoted:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words
}
