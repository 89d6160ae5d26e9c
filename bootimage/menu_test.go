package bootimage

import (
	"strings"
	"testing"
	"time"
)

func testMedia() Media {
	return Media{
		Kernel:  "vmlinuz",
		Initrd:  "initrd.img",
		Cmdline: "console=ttyS0,115200n8 loglevel=4",
		Version: "1.2",
		Timeout: DefaultTimeout,
		Epoch:   time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func TestSyslinuxConfig(t *testing.T) {
	got := testMedia().SyslinuxConfig()
	want := `SERIAL 0 115200
UI menu.c32
PROMPT 0
TIMEOUT 30
MENU TITLE Kurma 1.2
MENU AUTOBOOT Booting in # second{,s}: Tab edits the command line, Enter boots.
DEFAULT kurma

LABEL kurma
  MENU LABEL Kurma 1.2
  LINUX /boot/vmlinuz
  INITRD /boot/initrd.img
  APPEND console=ttyS0,115200n8 loglevel=4
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestGrubConfig(t *testing.T) {
	m := testMedia()
	m.Cmdline = `console=ttyS0 kurma.config.url=http://h/${mac} "kurma.hostname=a b" x='y'`
	got := m.GrubConfig()
	want := `set timeout=3
set default=0
insmod all_video
menuentry 'Kurma 1.2' {
	linux /boot/vmlinuz console=ttyS0 'kurma.config.url=http://h/${mac}' '"kurma.hostname=a b"' 'x='\''y'\'''
	initrd /boot/initrd.img
}
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		timeout              int
		syslinux, grubConfig string
	}{
		{3, "TIMEOUT 30\n", "set timeout=3\n"},
		{0, "TIMEOUT 1\n", "set timeout=0\n"}, // syslinux's 0 would wait forever
		{-1, "TIMEOUT 0\n", "set timeout=-1\n"},
	}
	for _, tc := range tests {
		m := testMedia()
		m.Timeout = tc.timeout
		if got := m.SyslinuxConfig(); !strings.Contains(got, tc.syslinux) {
			t.Errorf("timeout %d: syslinux.cfg has no %q:\n%s", tc.timeout, tc.syslinux, got)
		}
		if got := m.GrubConfig(); !strings.HasPrefix(got, tc.grubConfig) {
			t.Errorf("timeout %d: grub.cfg does not start with %q:\n%s", tc.timeout, tc.grubConfig, got)
		}
	}
}

func TestGrubEarlyConfig(t *testing.T) {
	got := grubEarlyConfig("2024-01-01-00-00-00-00")
	want := "search --no-floppy --set=root --fs-uuid 2024-01-01-00-00-00-00\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSplitCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc ", []string{"a", "b", "c"}},
		{`a "b c" d="e f"`, []string{"a", `"b c"`, `d="e f"`}},
	}
	for _, tc := range tests {
		got := splitCmdline(tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("splitCmdline(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMediaCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Media)
		want   string
	}{
		{"no kernel", func(m *Media) { m.Kernel = "" }, "no kernel"},
		{"no initrd", func(m *Media) { m.Initrd = "" }, "no initrd"},
		{"before FAT", func(m *Media) { m.Epoch = time.Unix(0, 0) }, "before 1980"},
		{"line break", func(m *Media) { m.Cmdline = "a\nb" }, "line break"},
		{"version", func(m *Media) { m.Version = "1 'x'" }, "version"},
	}
	for _, tc := range tests {
		m := testMedia()
		tc.change(&m)
		if err := m.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := testMedia().check(); err != nil {
		t.Errorf("valid media: %v", err)
	}
}
