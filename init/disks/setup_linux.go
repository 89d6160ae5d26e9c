package disks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/config"
)

// DefaultRoot is where the usages are bound and the disks mounted (under
// disks/).
const DefaultRoot = "/var/lib/kurma"

// Setup prepares the configured disks.
type Setup struct {
	Resolver Resolver
	// Root is DefaultRoot unless a test says otherwise.
	Root string
	// Run runs a tool (mkfs.ext4, resize2fs) and returns its output.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	// LoadFS loads the kernel module of a filesystem before it is
	// mounted; nil when every filesystem is built in.
	LoadFS func(fstype string) error
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// Result is what became of one disk entry.
type Result struct {
	Disk       config.Disk
	Device     string
	Found      Signature // before anything was done
	Plan       Plan
	FormatTook time.Duration
	Grown      bool
	MountPoint string
	Took       time.Duration
	Err        error
}

// Prepare resolves, formats, grows and mounts each disk and binds its
// usages, entry by entry: one disk that fails does not stop the others.
// The error joins every failure.
func (s *Setup) Prepare(ctx context.Context, list []config.Disk) ([]Result, error) {
	claimed := map[string]bool{}
	var results []Result
	var errs []error
	for _, d := range list {
		start := time.Now()
		r := s.prepare(ctx, d, claimed)
		r.Took = time.Since(start)
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
		results = append(results, r)
	}
	return results, errors.Join(errs...)
}

func (s *Setup) prepare(ctx context.Context, d config.Disk, claimed map[string]bool) Result {
	r := Result{Disk: d}
	dev, found, err := s.Resolver.Resolve(ctx, d, claimed)
	if err != nil {
		r.Err = err
		return r
	}
	claimed[dev] = true
	r.Device, r.Found = dev, found
	plan, err := Decide(dev, found, d)
	if err != nil {
		r.Err = err
		return r
	}
	r.Plan = plan
	s.logf("disk %s: %s is %s: %s", Describe(d), dev, found, plan.Note)
	sig := found
	if plan.Format {
		start := time.Now()
		if err := s.format(ctx, dev, plan.FSType, d); err != nil {
			r.Err = fmt.Errorf("disk %s: format %s as %s: %w", Describe(d), dev, plan.FSType, err)
			return r
		}
		r.FormatTook = time.Since(start)
		if sig, err = ProbeDevice(dev); err != nil || sig.Kind != KindFilesystem {
			r.Err = fmt.Errorf("disk %s: %s holds no filesystem after mkfs (%v)", Describe(d), dev, err)
			return r
		}
		s.logf("disk %s: formatted %s as %s in %d ms", Describe(d), dev, sig, r.FormatTook.Milliseconds())
	}
	root := s.Root
	if root == "" {
		root = DefaultRoot
	}
	name := sig.UUID
	if name == "" {
		name = filepath.Base(dev)
	}
	r.MountPoint = filepath.Join(root, "disks", name)
	if err := s.mount(dev, r.MountPoint, sig.Type); err != nil {
		r.Err = fmt.Errorf("disk %s: %w", Describe(d), err)
		return r
	}
	if d.Resize {
		grown, err := s.grow(ctx, dev, sig, r.MountPoint)
		if err != nil {
			r.Err = fmt.Errorf("disk %s: grow %s: %w", Describe(d), dev, err)
		}
		r.Grown = grown
	}
	for _, u := range d.Usages {
		if err := bindUsage(r.MountPoint, root, string(u)); err != nil {
			r.Err = errors.Join(r.Err, fmt.Errorf("disk %s: %w", Describe(d), err))
		}
	}
	return r
}

func (s *Setup) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// mkfs returns the command that makes fstype on dev, keeping the label
// or UUID the entry names the disk by, so that the next boot finds it.
func mkfs(fstype, dev string, d config.Disk) (string, []string, error) {
	switch fstype {
	case "ext4", "ext3", "ext2":
		args := []string{"-t", fstype, "-F", "-q", "-E", "lazy_itable_init=1"}
		if d.Label != "" {
			args = append(args, "-L", d.Label)
		}
		if d.UUID != "" {
			args = append(args, "-U", d.UUID)
		}
		return "mke2fs", append(args, dev), nil
	case "xfs":
		args := []string{"-f", "-q"}
		if d.Label != "" {
			args = append(args, "-L", d.Label)
		}
		if d.UUID != "" {
			args = append(args, "-m", "uuid="+d.UUID)
		}
		return "mkfs.xfs", append(args, dev), nil
	case "vfat":
		var args []string
		if d.Label != "" {
			args = append(args, "-n", strings.ToUpper(d.Label))
		}
		if d.UUID != "" {
			args = append(args, "-i", strings.ReplaceAll(d.UUID, "-", ""))
		}
		return "mkfs.vfat", append(args, dev), nil
	}
	return "", nil, fmt.Errorf("cannot format %s", fstype)
}

func (s *Setup) format(ctx context.Context, dev, fstype string, d config.Disk) error {
	name, args, err := mkfs(fstype, dev, d)
	if err != nil {
		return err
	}
	return s.run(ctx, name, args...)
}

func (s *Setup) run(ctx context.Context, name string, args ...string) error {
	_, err := s.output(ctx, name, args...)
	return err
}

// output runs a tool and returns its output; a failure says what the
// tool printed.
func (s *Setup) output(ctx context.Context, name string, args ...string) ([]byte, error) {
	if s.Run == nil {
		return nil, fmt.Errorf("%s: no way to run tools", name)
	}
	out, err := s.Run(ctx, name, args...)
	if err != nil {
		if msg := strings.TrimSpace(string(out)); msg != "" {
			return out, fmt.Errorf("%s: %w: %s", name, err, msg)
		}
		return out, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// grow resizes the filesystem to its device; it reports whether it did.
func (s *Setup) grow(ctx context.Context, dev string, sig Signature, mnt string) (bool, error) {
	size, err := deviceSize(dev)
	if err != nil {
		return false, err
	}
	if sig.Size > 0 && size-sig.Size < 1<<20 {
		return false, nil // already fills its device
	}
	switch sig.Type {
	case "ext4", "ext3", "ext2":
		// On a mounted filesystem resize2fs grows it online, without the
		// e2fsck it would ask for offline.
		if err := s.run(ctx, "resize2fs", dev); err != nil {
			return false, err
		}
	case "xfs":
		// XFS grows only mounted, by its mount point. Its superblock on
		// the device says the new size only once the log is written
		// back: the size comes from what xfs_growfs says.
		out, err := s.output(ctx, "xfs_growfs", "-d", mnt)
		if err != nil {
			return false, err
		}
		if grown, ok := xfsGrown(out); ok {
			s.logf("disk %s: grew the filesystem from %d to %d MiB", dev, sig.Size>>20, grown>>20)
			return true, nil
		}
	default:
		return false, fmt.Errorf("growing %s is not supported (ext2/3/4 and xfs are)", sig.Type)
	}
	after, _ := ProbeDevice(dev) // for the message only
	s.logf("disk %s: grew the filesystem from %d to %d MiB", dev, sig.Size>>20, after.Size>>20)
	return true, nil
}

// xfsGrown reads the new size from what xfs_growfs prints: the data
// section's block size ("data = bsize=4096 blocks=76800, ...") and
// "data blocks changed from 76800 to 102400".
func xfsGrown(out []byte) (int64, bool) {
	var bsize, blocks int64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "data" && f[1] == "=" && strings.HasPrefix(f[2], "bsize="):
			bsize, _ = strconv.ParseInt(strings.TrimPrefix(f[2], "bsize="), 10, 64)
		case strings.HasPrefix(line, "data blocks changed from "):
			if _, err := fmt.Sscanf(line, "data blocks changed from %d to %d", new(int64), &blocks); err != nil {
				blocks = 0
			}
		}
	}
	return bsize * blocks, bsize > 0 && blocks > 0
}

func deviceSize(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Seek(0, 2)
}

// mount mounts dev on dir. A failure says which device and why, with
// what the kernel logged about it.
func (s *Setup) mount(dev, dir, fstype string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", dev, err)
	}
	if s.LoadFS != nil {
		if err := s.LoadFS(fstype); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: the %s module: %w", dev, fstype, dir, fstype, err)
		}
	}
	klog := openKernelLog()
	defer klog.Close()
	if err := unix.Mount(dev, dir, fstype, unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		msg := fmt.Sprintf("mount %s (%s) on %s: %v", dev, fstype, dir, err)
		if lines := klog.about(filepath.Base(dev)); len(lines) > 0 {
			msg += "; the kernel says: " + strings.Join(lines, "; ")
		}
		return errors.New(msg)
	}
	return nil
}

// bindUsage binds the usage's directory on the disk mounted at mnt over
// root/usage.
func bindUsage(mnt, root, usage string) error {
	src, dst := filepath.Join(mnt, usage), filepath.Join(root, usage)
	for _, dir := range []string{src, dst} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("usage %s: %w", usage, err)
		}
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("usage %s: bind %s on %s: %w", usage, src, dst, err)
	}
	return nil
}

// kernelLog reads the kernel log records written after it was opened.
// It reads the raw descriptor: an os.File of /dev/kmsg opened non-blocking
// goes to Go's poller, whose Read waits for the next record instead of
// returning at the end, and the disks phase hung after a failed mount
// that the kernel logged nothing more about.
type kernelLog struct{ fd int }

func openKernelLog() kernelLog {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return kernelLog{-1} // no kernel log: the errno alone explains the failure
	}
	if _, err := unix.Seek(fd, 0, 2); err != nil {
		unix.Close(fd)
		return kernelLog{-1}
	}
	return kernelLog{fd}
}

// about returns the messages since opening that name the device.
func (k kernelLog) about(name string) []string {
	if k.fd < 0 {
		return nil
	}
	var out []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(k.fd, buf) // one record per read; EAGAIN at the end
		if err != nil || n <= 0 {
			return out
		}
		_, msg, ok := bytes.Cut(buf[:n], []byte(";"))
		if !ok {
			continue
		}
		line := strings.TrimSpace(string(bytes.SplitN(msg, []byte("\n"), 2)[0]))
		if strings.Contains(line, name) {
			out = append(out, line)
		}
	}
}

func (k kernelLog) Close() {
	if k.fd >= 0 {
		_ = unix.Close(k.fd) // read-only
	}
}
