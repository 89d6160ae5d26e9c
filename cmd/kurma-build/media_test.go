package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kurmaos/kurma/bootimage"
)

// fakeImage is an image directory whose kernel and initramfs are bytes
// no machine boots: the media are only built here.
func fakeImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"vmlinuz":    strings.Repeat("k", 4096),
		"initrd.img": strings.Repeat("i", 8192),
		"cmdline":    "console=ttyS0 loglevel=4\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestMediaCommands runs each medium's subcommand in-process and checks
// what it prints and writes.
func TestMediaCommands(t *testing.T) {
	if missing := bootimage.MissingTools(); len(missing) > 0 {
		t.Skipf("the boot media tools are not installed (scripts/setup): %s", strings.Join(missing, ", "))
	}
	img := fakeImage(t)
	out := t.TempDir()
	common := []string{"-image", img, "-epoch", "1704067200", "-version", "t1"}
	tests := []struct {
		args  []string
		print string // a regular expression
		files []string
	}{
		{[]string{"iso", "-o", filepath.Join(out, "k.iso")}, `k\.iso: [0-9.]+ MiB, hybrid ISO`, []string{"k.iso"}},
		{[]string{"disk", "-o", filepath.Join(out, "k.img"), "-qcow2", filepath.Join(out, "k.qcow2"), "-esp-mib", "16", "-data-mib", "8"},
			`k\.img: 26\.0 MiB, raw GPT disk: 16 MiB EFI system partition \(BIOS and UEFI\), 8 MiB blank KURMA_DATA; sparse\n.*k\.qcow2: [0-9.]+ MiB, qcow2 copy`, []string{"k.img", "k.qcow2"}},
		{[]string{"uki", "-o", filepath.Join(out, "k.efi"), "-append", "kurma.debug=1"}, `k\.efi: [0-9.]+ MiB, Unified Kernel Image`, []string{"k.efi"}},
		{[]string{"pxe", "-o", filepath.Join(out, "pxe"), "-config-url", "http://${next-server}/config/${mac}"}, `pxe: [0-9.]+ MiB, PXE tree`,
			[]string{"pxe/boot.ipxe", "pxe/vmlinuz", "pxe/initrd.img", "pxe/undionly.kpxe", "pxe/snponly.efi"}},
	}
	for _, tc := range tests {
		t.Run(tc.args[0], func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append(append([]string{tc.args[0]}, common...), tc.args[1:]...)
			if err := run(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("kurma-build %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
			}
			if !regexp.MustCompile(tc.print).MatchString(stdout.String()) {
				t.Errorf("printed %q, want %q", stdout.String(), tc.print)
			}
			for _, f := range tc.files {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	script, err := os.ReadFile(filepath.Join(out, "pxe", "boot.ipxe"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "kernel vmlinuz initrd=initrd.img console=ttyS0 loglevel=4 kurma.config.url=${kurma-config-url}\n"; !strings.Contains(string(script), want) {
		t.Errorf("boot.ipxe has no %q:\n%s", want, script)
	}
	uki, err := os.ReadFile(filepath.Join(out, "k.efi"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(uki, []byte("console=ttyS0 loglevel=4 kurma.debug=1\x00")) {
		t.Errorf("the UKI does not hold the image's command line with -append's")
	}
}

func TestMediaFlagErrors(t *testing.T) {
	img := fakeImage(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"iso", "-image", t.TempDir()}, "run make image"},
		{[]string{"iso", "-image", img, "extra"}, "unexpected arguments"},
		{[]string{"disk", "-image", img, "-epoch", "1704067200", "-esp-mib", "4"}, "too small"},
		{[]string{"uki", "-image", img, "-epoch", "1704067200", "-version", "a b"}, "version"},
		{[]string{"pxe", "-image", img, "-epoch", "1704067200", "-config-url", "tftp://x"}, "not an http or https URL"},
		{[]string{"iso", "-image", img, "-epoch", "100"}, "before 1980"},
		{[]string{"nothing"}, `unknown command "nothing"`},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("kurma-build %s: error %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
