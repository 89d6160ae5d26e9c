package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kurmaos/kurma/config"
	"github.com/kurmaos/kurma/init/disks"
)

// diskWait bounds the wait for a configured disk to appear: block devices
// are probed asynchronously after their driver loads.
const diskWait = 10 * time.Second

// disks prepares the configured disks: find, format when allowed, grow,
// mount, bind the usages under /var/lib/kurma. Usages on no disk stay on
// the root tmpfs.
func (m *Machine) disks(ctx context.Context) error {
	for _, u := range []config.Usage{config.UsageImages, config.UsagePods, config.UsageVolumes, config.UsageLogs} {
		if err := os.MkdirAll(filepath.Join(disks.DefaultRoot, string(u)), 0o755); err != nil {
			return err
		}
	}
	// resize2fs and e2fsck look in /etc/mtab for what is mounted.
	if err := os.Symlink("/proc/self/mounts", "/etc/mtab"); err != nil && !errors.Is(err, os.ErrExist) {
		m.log.Warnf("disks: /etc/mtab: %v", err)
	}
	if len(m.cfg.Disks) == 0 {
		m.log.Debugf("disks: none configured; /var/lib/kurma is on the root tmpfs")
		return nil
	}
	s := &disks.Setup{
		Resolver: disks.Resolver{Wait: diskWait},
		Run:      m.runTool,
		LoadFS: func(fstype string) error {
			switch fstype {
			case "ext4", "ext3", "ext2":
				return m.modprobe("ext4") // the profile's; ext4 mounts ext2 and ext3
			case "vfat":
				// FAT asks the kernel for its code page and character set
				// at mount time (request_module): Kurma has no modprobe
				// for the kernel to call, so they are loaded first:
				// Debian's defaults, code page 437 and iocharset ascii
				// (file names are UTF-8 all the same: FAT_DEFAULT_UTF8).
				for _, name := range []string{"fs-vfat", "nls_cp437", "nls_ascii"} {
					if err := m.modprobe(name); err != nil {
						return err
					}
				}
				return nil
			}
			return m.modprobe("fs-" + fstype)
		},
		Logf: m.log.Infof,
	}
	results, _ := s.Prepare(ctx, m.cfg.Disks) // each failure is in its result
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			m.log.Errorf("%v", r.Err)
			failed++
			continue
		}
		m.log.Infof("disk %s: %s mounted on %s (%s) in %d ms, usages %v", disks.Describe(r.Disk), r.Device, r.MountPoint, r.Plan.FSType, r.Took.Milliseconds(), r.Disk.Usages)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d disks failed (above)", failed, len(results))
	}
	return nil
}
