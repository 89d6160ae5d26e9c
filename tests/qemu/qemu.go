// Package qemu boots Kurma images in QEMU for the end-to-end tests: it
// builds the command line (TCG, user-mode networking with restrict=on,
// disks, port forwards, firmware), reads the serial console, waits for
// patterns with timeouts, drives the QEMU monitor (ctrl-alt-del, power
// button) and always kills QEMU when the test ends.
//
// A scenario in tests/e2e is a few lines:
//
//	vm := qemu.Start(t, qemu.Options{Append: []string{"kurma.debug=1"}})
//	vm.Expect(t, `kurma: ready`, time.Minute)
//	vm.SendKey(t, "ctrl-alt-delete")
//	vm.WaitExit(t, 30*time.Second)
package qemu

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	initrdpkg "github.com/kurmaos/kurma/initrd"
)

// Options describe one boot.
type Options struct {
	// Image is the directory with vmlinux, vmlinuz, initrd.img and
	// cmdline; $KURMA_IMAGE or build/kurma of the repository by default.
	Image string
	// Kernel and Initrd override the image's files. By default the
	// uncompressed vmlinux boots through QEMU's PVH entry (4 s instead
	// of 9 s under TCG).
	Kernel, Initrd string
	// InitrdFiles are added to the initramfs (path in the guest ->
	// contents, mode 0644; 0755 under /bin and /sbin): an archive of them
	// is appended to the image's, which the kernel unpacks over it.
	InitrdFiles map[string][]byte
	// NoKernel boots from firmware (disk, CD-ROM, network) instead of
	// -kernel; Kernel, Initrd and the command line are not used.
	NoKernel bool
	// Append is added to the image's kernel command line, after the
	// harness's own (panic=-1 kurma.shutdown=poweroff).
	Append []string
	// Machine is q35 by default; Memory in MiB (1024); CPUs (2).
	Machine string
	Memory  int
	CPUs    int
	// Disks are attached in order.
	Disks []Disk
	// NIC is the model of the one user-mode NIC: virtio-net-pci by
	// default, "none" for no network.
	NIC string
	// MAC sets the NIC's address (QEMU picks 52:54:00:12:34:56).
	MAC string
	// HostFwd forwards host ports to guest TCP ports; HostPort reports
	// the host side.
	HostFwd []int
	// GuestFwd relays guest connections to an address (10.0.2.100:80)
	// to a host address (127.0.0.1:8080).
	GuestFwd map[string]string
	// TFTP serves a directory through the user network's TFTP server,
	// with BootFile as the DHCP boot file name (PXE).
	TFTP, BootFile string
	// Firmware is "" (SeaBIOS) or "uefi" (OVMF with a fresh variable
	// store).
	Firmware string
	// Boot is QEMU's -boot order ("n" for the network, "d" for CD-ROM).
	Boot string
	// Args are more QEMU arguments.
	Args []string
}

// A Disk is a drive: a file with its format (raw by default) and
// interface: "virtio" (default), "cdrom" (on the machine's AHCI), "ide",
// "usb".
type Disk struct {
	Path, Format, Interface string
	Serial                  string
	ReadOnly                bool
}

// VM is a running QEMU.
type VM struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser // the serial line's input
	dir      string
	monitor  string
	hostFwd  map[int]int
	logTo    func(string)
	mu       sync.Mutex
	cond     *sync.Cond
	console  []byte
	cursor   int // Expect searches from here
	exited   bool
	exitErr  error
	exitDone chan struct{}
}

// Enabled reports whether end-to-end boots are enabled (KURMA_E2E=1);
// tests skip without them, so `go test ./...` needs no QEMU.
func Enabled() bool { return os.Getenv("KURMA_E2E") == "1" }

// Skip skips the test unless end-to-end boots are enabled.
func Skip(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skip("end-to-end boot: set KURMA_E2E=1 (make test-e2e) to run it")
	}
}

// ImageDir returns the image directory Options.Image defaults to.
func ImageDir() string {
	if d := os.Getenv("KURMA_IMAGE"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "build", "kurma")
}

// Start boots a VM and kills it when the test ends.
func Start(t testing.TB, opts Options) *VM {
	t.Helper()
	Skip(t)
	vm, err := start(t, opts)
	if err != nil {
		t.Fatalf("qemu: %v", err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("console of the failed boot:\n%s", vm.Console())
		}
	})
	return vm
}

func start(t testing.TB, opts Options) (*VM, error) {
	dir := t.TempDir()
	vm := &VM{
		dir:      dir,
		monitor:  filepath.Join(dir, "monitor.sock"),
		hostFwd:  map[int]int{},
		exitDone: make(chan struct{}),
		logTo:    func(string) {},
	}
	if os.Getenv("KURMA_E2E_CONSOLE") == "1" {
		vm.logTo = func(s string) { t.Log(s) }
	}
	vm.cond = sync.NewCond(&vm.mu)
	args, err := vm.args(opts)
	if err != nil {
		return nil, err
	}
	vm.cmd = exec.Command("qemu-system-x86_64", args...)
	stdout, err := vm.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if vm.stdin, err = vm.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	vm.cmd.Stderr = vm.cmd.Stdout // QEMU's own errors belong with the console
	if err := vm.cmd.Start(); err != nil {
		return nil, err
	}
	go vm.read(stdout)
	return vm, nil
}

func (vm *VM) args(opts Options) ([]string, error) {
	image := opts.Image
	if image == "" {
		image = ImageDir()
	}
	machine := opts.Machine
	if machine == "" {
		machine = "q35"
	}
	mem, cpus := opts.Memory, opts.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 2
	}
	args := []string{
		// One host thread runs both vCPUs: under multi-threaded TCG
		// (QEMU 7.2) a vCPU that runs kernel code while the other
		// patches it (text_poke_bp, e.g. a static key flipped by the
		// first memory cgroup) can loop on the int3 for good; about one
		// boot in ten hung that way. See docs/testing.md.
		"-machine", machine, "-accel", "tcg,thread=single", "-cpu", "max",
		"-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(mem),
		"-nodefaults", "-no-reboot", "-display", "none",
		"-serial", "stdio",
		"-monitor", "unix:" + vm.monitor + ",server,nowait",
		"-device", "virtio-rng-pci",
	}
	if !opts.NoKernel {
		kernel, initrd := opts.Kernel, opts.Initrd
		if kernel == "" {
			kernel = filepath.Join(image, "vmlinux")
		}
		if initrd == "" {
			initrd = filepath.Join(image, "initrd.img")
		}
		base, err := os.ReadFile(filepath.Join(image, "cmdline"))
		if err != nil {
			return nil, fmt.Errorf("%w (run make image)", err)
		}
		for _, f := range []string{kernel, initrd} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("%w (run make image)", err)
			}
		}
		if len(opts.InitrdFiles) > 0 {
			var err error
			if initrd, err = vm.withFiles(initrd, opts.InitrdFiles); err != nil {
				return nil, err
			}
		}
		cmdline := strings.Join(append([]string{strings.TrimSpace(string(base)), "panic=-1", "kurma.shutdown=poweroff"}, opts.Append...), " ")
		args = append(args, "-kernel", kernel, "-initrd", initrd, "-append", cmdline)
	}
	switch opts.Firmware {
	case "":
	case "uefi":
		vars := filepath.Join(vm.dir, "OVMF_VARS.fd")
		if err := copyFile(ovmfVars, vars); err != nil {
			return nil, fmt.Errorf("uefi firmware: %w (scripts/setup installs ovmf)", err)
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+ovmfCode,
			"-drive", "if=pflash,format=raw,file="+vars)
	default:
		return nil, fmt.Errorf("unknown firmware %q (\"\" or \"uefi\")", opts.Firmware)
	}
	if opts.Boot != "" {
		args = append(args, "-boot", opts.Boot)
	}
	for i, d := range opts.Disks {
		a, err := diskArgs(i, d)
		if err != nil {
			return nil, err
		}
		args = append(args, a...)
	}
	if opts.NIC != "none" {
		netdev := "user,id=net0,restrict=on"
		for _, guestPort := range opts.HostFwd {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			vm.hostFwd[guestPort] = p
			netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", p, guestPort)
		}
		for guest, host := range opts.GuestFwd {
			// cmd: runs a relay per guest connection; a tcp: target
			// would connect once, when QEMU starts.
			netdev += fmt.Sprintf(",guestfwd=tcp:%s-cmd:socat - TCP:%s", guest, host)
		}
		if opts.TFTP != "" {
			netdev += ",tftp=" + opts.TFTP
			if opts.BootFile != "" {
				netdev += ",bootfile=" + opts.BootFile
			}
		}
		model := opts.NIC
		if model == "" {
			model = "virtio-net-pci"
		}
		nic := model + ",netdev=net0"
		if opts.MAC != "" {
			nic += ",mac=" + opts.MAC
		}
		if opts.Boot != "n" && opts.TFTP == "" {
			nic += ",romfile=" // no iPXE ROM to run: saves a second of boot
		}
		args = append(args, "-netdev", netdev, "-device", nic)
	}
	return append(args, opts.Args...), nil
}

// withFiles writes a copy of the initrd with an archive of files appended.
func (vm *VM) withFiles(initrd string, files map[string][]byte) (string, error) {
	out := filepath.Join(vm.dir, "initrd-with-files.img")
	data, err := os.ReadFile(initrd)
	if err != nil {
		return "", err
	}
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	// The next archive starts on a 4-byte boundary.
	if pad := (4 - len(data)%4) % 4; pad > 0 {
		if _, err := f.Write(make([]byte, pad)); err != nil {
			return "", err
		}
	}
	overlay := map[string]initrdpkg.File{}
	for name, body := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "/bin/") || strings.HasPrefix(name, "/sbin/") {
			mode = 0o755
		}
		overlay[name] = initrdpkg.File{Data: body, Mode: mode}
	}
	if err := initrdpkg.Overlay(overlay, f); err != nil {
		return "", err
	}
	return out, f.Close()
}

// The OVMF firmware of Debian's ovmf package.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

func diskArgs(i int, d Disk) ([]string, error) {
	format := d.Format
	if format == "" {
		format = "raw"
	}
	id := fmt.Sprintf("disk%d", i)
	drive := fmt.Sprintf("if=none,id=%s,format=%s,file=%s", id, format, d.Path)
	if d.ReadOnly {
		drive += ",readonly=on"
	}
	serial := ""
	if d.Serial != "" {
		serial = ",serial=" + d.Serial
	}
	switch d.Interface {
	case "", "virtio":
		return []string{"-drive", drive, "-device", "virtio-blk-pci,drive=" + id + serial}, nil
	case "cdrom":
		return []string{"-drive", drive + ",media=cdrom", "-device", "ide-cd,drive=" + id}, nil
	case "ide":
		return []string{"-drive", drive, "-device", "ide-hd,drive=" + id + serial}, nil
	case "usb":
		return []string{"-device", "qemu-xhci", "-drive", drive, "-device", "usb-storage,drive=" + id + serial}, nil
	}
	return nil, fmt.Errorf("disk %d: unknown interface %q", i, d.Interface)
}

func (vm *VM) read(r io.Reader) {
	br := bufio.NewReader(r)
	buf := make([]byte, 4096)
	var line []byte
	for {
		n, err := br.Read(buf)
		if n > 0 {
			vm.mu.Lock()
			vm.console = append(vm.console, buf[:n]...)
			vm.cond.Broadcast()
			vm.mu.Unlock()
			line = append(line, buf[:n]...)
			for {
				i := strings.IndexByte(string(line), '\n')
				if i < 0 {
					break
				}
				vm.logTo(strings.TrimRight(string(line[:i]), "\r"))
				line = line[i+1:]
			}
		}
		if err != nil {
			break
		}
	}
	err := vm.cmd.Wait()
	vm.mu.Lock()
	vm.exited, vm.exitErr = true, err
	vm.cond.Broadcast()
	vm.mu.Unlock()
	close(vm.exitDone)
}

// Console returns everything the console printed so far.
func (vm *VM) Console() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.console)
}

// panicPattern is the kernel's last word.
var panicPattern = regexp.MustCompile(`Kernel panic - not syncing[^\n]*`)

// Expect waits until the console prints a line matching pattern (a
// regular expression) after the end of the previous match, and returns
// the match and its submatches. Only complete lines are searched. It fails the test on timeout, on a kernel
// panic, or when QEMU exits first.
func (vm *VM) Expect(t testing.TB, pattern string, timeout time.Duration) []string {
	t.Helper()
	m, err := vm.expect(regexp.MustCompile(pattern), timeout)
	if err != nil {
		t.Fatalf("waiting for %q: %v", pattern, err)
	}
	return m
}

// ExpectErr is Expect returning the error instead of failing the test.
func (vm *VM) ExpectErr(pattern string, timeout time.Duration) ([]string, error) {
	return vm.expect(regexp.MustCompile(pattern), timeout)
}

// ExpectPrompt is Expect for text that waits for input, such as a boot
// menu or a prompt: it also searches the line the console is still
// printing.
func (vm *VM) ExpectPrompt(t testing.TB, pattern string, timeout time.Duration) []string {
	t.Helper()
	m, err := vm.expectIn(regexp.MustCompile(pattern), timeout, expectPrompt)
	if err != nil {
		t.Fatalf("waiting for %q: %v", pattern, err)
	}
	return m
}

// ExpectSeen is Expect for a line whose place among the others is not
// fixed (a background task's): it searches the whole console from its
// start, and leaves where the next Expect searches from as it is.
func (vm *VM) ExpectSeen(t testing.TB, pattern string, timeout time.Duration) []string {
	t.Helper()
	m, err := vm.expectIn(regexp.MustCompile(pattern), timeout, expectSeen)
	if err != nil {
		t.Fatalf("waiting for %q: %v", pattern, err)
	}
	return m
}

func (vm *VM) expect(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	return vm.expectIn(re, timeout, expectLine)
}

// How expectIn searches.
type expectMode int

const (
	expectLine   expectMode = iota // whole lines after the cursor; moves it
	expectPrompt                   // also the line being printed; moves it
	expectSeen                     // whole lines from the start; cursor kept
)

func (vm *VM) expectIn(re *regexp.Regexp, timeout time.Duration, mode expectMode) ([]string, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		vm.mu.Lock()
		vm.cond.Broadcast()
		vm.mu.Unlock()
	})
	defer timer.Stop()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for {
		// Only whole lines: a match must not stop at the end of a read.
		from := vm.cursor
		if mode == expectSeen {
			from = 0
		}
		rest := vm.console[from:]
		if mode == expectPrompt {
			// a prompt: the line being printed counts
		} else if i := strings.LastIndexByte(string(rest), '\n'); i >= 0 {
			rest = rest[:i+1]
		} else {
			rest = nil
		}
		if loc := re.FindSubmatchIndex(rest); loc != nil {
			var out []string
			for i := 0; i < len(loc); i += 2 {
				if loc[i] < 0 {
					out = append(out, "")
					continue
				}
				out = append(out, string(rest[loc[i]:loc[i+1]]))
			}
			if mode != expectSeen {
				vm.cursor += loc[1]
			}
			return out, nil
		}
		if p := panicPattern.Find(rest); p != nil {
			return nil, fmt.Errorf("the kernel panicked: %s", p)
		}
		if vm.exited {
			if loc := re.FindSubmatchIndex(vm.console[from:]); loc != nil {
				vm.console = append(vm.console, '\n') // the last line had no newline
				continue
			}
			return nil, fmt.Errorf("qemu exited (%v) first", vm.exitErr)
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("timed out after %s", timeout)
		}
		vm.cond.Wait()
	}
}

// Monitor sends a command to the QEMU monitor (HMP).
func (vm *VM) Monitor(t testing.TB, command string) {
	t.Helper()
	if err := vm.monitorCmd(command); err != nil {
		t.Fatalf("qemu monitor %q: %v", command, err)
	}
}

func (vm *VM) monitorCmd(command string) error {
	var conn net.Conn
	var err error
	for i := 0; i < 50; i++ {
		if conn, err = net.Dial("unix", vm.monitor); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, command+"\n"); err != nil {
		return err
	}
	// Wait for the prompt after the command's output, so the command ran.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out []byte
	buf := make([]byte, 1024)
	for strings.Count(string(out), "(qemu)") < 2 {
		n, err := conn.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return fmt.Errorf("%w after %q", err, out)
		}
	}
	return nil
}

// SendKey presses keys on the guest's keyboard ("ctrl-alt-delete").
func (vm *VM) SendKey(t testing.TB, keys string) {
	t.Helper()
	vm.Monitor(t, "sendkey "+keys)
}

// Type types text on the guest's keyboard, a key at a time: letters,
// digits, space, "\n" (Enter) and . , - _ = / : ; as a US keyboard has
// them.
func (vm *VM) Type(t testing.TB, text string) {
	t.Helper()
	for _, r := range text {
		key, ok := keyNames[r]
		switch {
		case ok:
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			key = string(r)
		case r >= 'A' && r <= 'Z':
			key = "shift-" + strings.ToLower(string(r))
		default:
			t.Fatalf("qemu: no key for %q", r)
		}
		vm.SendKey(t, key)
	}
}

// keyNames are QEMU's names of the keys for characters that are not
// letters or digits.
var keyNames = map[rune]string{
	' ': "spc", '\n': "ret", '\t': "tab", '.': "dot", ',': "comma",
	'-': "minus", '_': "shift-minus", '=': "equal", '/': "slash",
	':': "shift-semicolon", ';': "semicolon",
}

// SerialWrite sends text to the guest's serial line (its console), as
// typed on a terminal there: "\r" is Enter.
func (vm *VM) SerialWrite(t testing.TB, text string) {
	t.Helper()
	if _, err := io.WriteString(vm.stdin, text); err != nil {
		t.Fatalf("qemu: serial input: %v", err)
	}
}

// WaitExit waits for QEMU to exit (the guest powered off) and fails the
// test if it does not, or exits with an error.
func (vm *VM) WaitExit(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-vm.exitDone:
	case <-time.After(timeout):
		t.Fatalf("qemu still runs %s later", timeout)
	}
	vm.mu.Lock()
	err := vm.exitErr
	vm.mu.Unlock()
	if err != nil {
		t.Fatalf("qemu exited: %v", err)
	}
	if p := panicPattern.FindString(vm.Console()); p != "" {
		t.Fatalf("the kernel panicked: %s", p)
	}
}

// HostPort returns the host port forwarded to a guest port.
func (vm *VM) HostPort(guestPort int) int { return vm.hostFwd[guestPort] }

// Kill stops QEMU if it still runs.
func (vm *VM) Kill() {
	select {
	case <-vm.exitDone:
		return
	default:
	}
	_ = vm.cmd.Process.Kill() // it may exit meanwhile
	<-vm.exitDone
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}
