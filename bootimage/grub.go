package bootimage

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// grubModules are built into GRUB's EFI image: enough to find the boot
// filesystem on a CD, a USB stick or a GPT disk, read its menu and boot
// Linux. Nothing is loaded from the medium but grub.cfg.
var grubModules = []string{
	"normal", "configfile", "search", "search_fs_uuid", "search_label",
	"iso9660", "fat", "part_gpt", "part_msdos",
	"linux", "all_video", "echo", "test", "ls", "cat", "reboot", "halt",
}

// grubEFI builds GRUB's EFI application with an embedded configuration
// that finds the filesystem with the given UUID (GRUB's form: an ISO
// 9660 volume's date, a FAT volume's serial) and reads its menu.
// grub-mkimage writes the same bytes for the same inputs.
func grubEFI(ctx context.Context, epoch time.Time, fsUUID string) ([]byte, error) {
	if err := needFile(grubEFIMods); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "kurma-grub-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	early := filepath.Join(tmp, "early.cfg")
	if err := os.WriteFile(early, []byte(grubEarlyConfig(fsUUID)), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, "bootx64.efi")
	args := append([]string{"-O", "x86_64-efi", "-d", grubEFIMods, "-p", grubPrefix, "-c", early, "-o", out}, grubModules...)
	if err := run(ctx, epoch, "grub-mkimage", args...); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}
