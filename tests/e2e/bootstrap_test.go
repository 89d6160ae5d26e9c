package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/tests/qemu"
)

// consoleHash is the yescrypt crypt(3) hash of the password "kurma", as
// Debian 12's mkpasswd makes by default (libxcrypt, through Perl's crypt).
const consoleHash = "$y$j9T$abcdefghijklmnop$AOZ0ALPbIvkhfV5FXJXOcPZXoYKAHqeM4Q/JYaH3u9D"

// TestBootstrapAndConsole boots with a configuration (in the initramfs)
// that sets the console's password and an SSH key, and three bootstrap
// containers: writer and reader run to completion in order (reader reads
// what writer wrote, and writer sees the environment and the file the
// configuration gives it); flaky is a service that exits 1 a second
// after each start. Then, from the host, OpenSSH logs in with the key
// through a forwarded port, runs kurma list (the console and flaky
// services are there) and kurma show flaky (its restarts count up); a
// key that is not authorized is refused. kurma poweroff over SSH ends
// the machine.
func TestBootstrapAndConsole(t *testing.T) {
	qemu.Skip(t)
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatalf("ssh (openssh-client, scripts/setup installs it): %v", err)
	}
	dir := t.TempDir()
	good, bad := sshKey(t, dir, "good"), sshKey(t, dir, "bad")
	pub, err := os.ReadFile(good + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`images:
  offline_dirs: [/usr/share/kurma/images]
services:
  console:
    password: %q
    ssh_authorized_keys: [%q]
bootstrap:
  containers:
    - name: writer
      image: kurma/busybox
      kind: run-to-completion
      essential: true
      args: [/bin/sh, -c, 'echo "$GREETING" > /shared/greeting && cat /etc/kurma-test/note && echo writer done']
      env: {GREETING: hello from the config}
      files:
        - {path: /etc/kurma-test/note, content: "a file from the config\n", mode: "0600"}
      volumes:
        - {name: shared, kind: host, source: /var/lib/kurma/volumes/shared, path: /shared}
    - name: reader
      image: kurma/busybox
      kind: run-to-completion
      args: [/bin/sh, -c, 'echo "reader got: $(cat /shared/greeting)"']
      volumes:
        - {name: shared, kind: host, source: /var/lib/kurma/volumes/shared, path: /shared, read_only: true}
    - name: flaky
      image: kurma/busybox
      args: [/bin/sh, -c, 'echo flaky up; sleep 1; exit 1']
      restart: {backoff: 1s, max_backoff: 8s}
`, consoleHash, strings.TrimSpace(string(pub)))
	vm := qemu.Start(t, qemu.Options{
		InitrdFiles: map[string][]byte{"/etc/kurma/config.yaml": []byte(config)},
		HostFwd:     []int{22},
	})
	vm.Expect(t, `kurma: bootstrap: writer: a file from the config`, bootTimeout)
	vm.Expect(t, `kurma: bootstrap: writer: writer done`, time.Minute)
	vm.Expect(t, `kurma: bootstrap: reader: reader got: hello from the config`, time.Minute)
	vm.Expect(t, `kurma: bootstrap: service console started`, time.Minute)
	vm.Expect(t, `kurma: bootstrap: service flaky started`, time.Minute)
	vm.Expect(t, `kurma:   bootstrap +\d+ ms\r?\n`, time.Minute)
	vm.Expect(t, `kurma: ready`, time.Minute)
	port := strconv.Itoa(vm.HostPort(22))
	ssh := func(key string, command string) (string, int) {
		t.Helper()
		cmd := exec.Command(sshPath, "-i", key, "-p", port, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-o", "LogLevel=ERROR", "root@127.0.0.1", command)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("ssh: %v", err)
		}
		return out.String(), 0
	}
	if _, err := vm.ExpectErr(`bootstrap: service flaky ended \(exit status 1\); restart 1 in 1s`, time.Minute); err != nil {
		// What the machine knows of the pod that did not end.
		out, _ := ssh(good, "kurma list; kurma show flaky; kurma logs flaky; for p in /host/proc/[0-9]*; do echo $(basename $p) $(tr '\\0' ' ' < $p/cmdline); done")
		t.Fatalf("%v\n%s", err, out)
	}
	vm.Expect(t, `bootstrap: service flaky ended \(exit status 1\); restart 2 in 2s`, time.Minute)
	// The pod that ends now is the second restart: the backoff waits 4 s.
	vm.Expect(t, `bootstrap: service flaky ended \(exit status 1\); restart 3 in 4s`, time.Minute)

	out, code := ssh(good, "kurma list")
	if code != 0 || !regexp.MustCompile(`console\s+running\s+console:running`).MatchString(out) || !strings.Contains(out, "flaky") {
		t.Errorf("kurma list over ssh: exit %d\n%s", code, out)
	}
	out, code = ssh(good, "kurma --json show flaky")
	m := regexp.MustCompile(`"restarts":\s*(\d+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Errorf("kurma show flaky over ssh: exit %d\n%s", code, out)
	} else if n, _ := strconv.Atoi(m[1]); n < 2 {
		t.Errorf("flaky was restarted %d times, want 2 or more:\n%s", n, out)
	}
	// The console container is privileged (the host's devices) and has
	// the API's socket, through the isolators, enforced.
	out, code = ssh(good, "kurma --json show console; test -c /dev/ttyS0 && echo host devices")
	for _, iso := range []string{"host/privileged", "host/api-access"} {
		if !regexp.MustCompile(`"name":\s*"` + iso + `",(\s*"app":\s*"\S*",)?\s*"status":\s*"enforced"`).MatchString(out) {
			t.Errorf("the console's isolator %s is not enforced: exit %d\n%s", iso, code, out)
		}
	}
	if !strings.Contains(out, "host devices") {
		t.Errorf("the console has no /dev/ttyS0:\n%s", out)
	}
	out, code = ssh(bad, "kurma list")
	if code != 255 || !strings.Contains(out, "Permission denied (publickey)") {
		t.Errorf("a key that is not authorized: exit %d\n%s", code, out)
	}

	if t.Failed() {
		return
	}
	defer func() {
		if t.Failed() {
			out, _ := ssh(good, "kurma logs console")
			t.Logf("the console service's log:\n%s", out)
		}
	}()
	// The serial console: a wrong password, then the right one, gives a
	// shell in the console container.
	// The first prompt came during the boot (the kernel's console is the
	// same line: PID 1's messages follow it).
	if !regexp.MustCompile(`Kurma \S+ \(ttyS0\)\s+Password: `).MatchString(vm.Console()) {
		t.Fatal("no login prompt on the serial console")
	}
	vm.SerialWrite(t, "hunter2\r")
	vm.Expect(t, `Login incorrect`, time.Minute)
	vm.ExpectPrompt(t, `Password: `, time.Minute)
	vm.SerialWrite(t, "kurma\r")
	vm.ExpectPrompt(t, `root@\S+:~# `, time.Minute)
	vm.SerialWrite(t, "kurma list | grep -c running; echo serial-$((6*7))\r")
	vm.Expect(t, `serial-42`, time.Minute)
	vm.SerialWrite(t, "exit\r")
	vm.ExpectPrompt(t, `Password: `, time.Minute)

	_, _ = ssh(good, "kurma poweroff")
	vm.Expect(t, `reboot: Power down`, time.Minute)
	vm.WaitExit(t, time.Minute)
}

// TestBootstrapEssentialFailure: an essential run-to-completion
// container that exits 3 stops the boot in emergency mode, naming it;
// the console service is started all the same, and ctrl-alt-del still
// powers off.
func TestBootstrapEssentialFailure(t *testing.T) {
	config := `images:
  offline_dirs: [/usr/share/kurma/images]
bootstrap:
  containers:
    - name: setup
      image: kurma/busybox
      kind: run-to-completion
      essential: true
      args: [/bin/sh, -c, 'echo cannot set up; exit 3']
    - name: never
      image: kurma/busybox
      kind: run-to-completion
      args: [/bin/sh, -c, 'echo ran after a failure']
`
	vm := qemu.Start(t, qemu.Options{InitrdFiles: map[string][]byte{"/etc/kurma/config.yaml": []byte(config)}})
	vm.Expect(t, `kurma: bootstrap: setup: cannot set up`, bootTimeout)
	vm.Expect(t, `kurma: bootstrap: service console started`, time.Minute)
	vm.Expect(t, `kurma: error: emergency mode: essential phase bootstrap failed: bootstrap container setup failed: exit status 3`, time.Minute)
	vm.Expect(t, `kurma:   bootstrap +\d+ ms  FAILED`, time.Minute)
	vm.Expect(t, `emergency mode: the boot stopped`, time.Minute)
	if strings.Contains(vm.Console(), "ran after a failure") || strings.Contains(vm.Console(), "kurma: ready") {
		t.Error("the boot went on after an essential container failed")
	}
	vm.SendKey(t, "ctrl-alt-delete")
	vm.Expect(t, `reboot: Power down`, time.Minute)
	vm.WaitExit(t, time.Minute)
}

// sshKey makes an ed25519 key pair with ssh-keygen and returns the
// private key's path.
func sshKey(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return p
}
