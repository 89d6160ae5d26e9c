package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/tests/qemu"
)

// TestDisks boots twice with the same four disks, configured from an OEM
// disk:
//
//	vdb  blank, format: if-blank, usages volumes and pods
//	vdc  ext4 labelled "keep" holding a file, format: if-blank, usage images
//	vdd  random data, format: if-blank
//	vde  blank, filesystem: xfs, format: if-blank, resize, usage logs
//	vdf  blank, filesystem: vfat, format: if-blank
//
// The first boot formats vdb, vde (XFS) and vdf (FAT), mounts them, binds
// their usages and writes a marker under /var/lib/kurma/volumes; it
// leaves vdc's filesystem as it is and refuses to touch vdd. Between the
// boots vde's disk grows by 100 MiB. The second boot finds the marker,
// formats nothing and grows vde's XFS online. Afterwards, from the host,
// debugfs reads the marker on vdb and the file on vdc, and vdd holds the
// same bytes as before.
func TestDisks(t *testing.T) {
	qemu.Skip(t)
	dir := t.TempDir()
	oem := vfatImage(t, dir, "KURMA_OEM", map[string]string{"config.yaml": `disks:
  - path: /dev/vdb
    format: if-blank
    usages: [volumes, pods]
  - label: keep
    format: if-blank
    resize: true
    usages: [images]
  - path: /dev/vdd
    format: if-blank
  - path: /dev/vde
    filesystem: xfs
    format: if-blank
    resize: true
    usages: [logs]
  - path: /dev/vdf
    filesystem: vfat
    format: if-blank
`})
	blank := sizedFile(t, filepath.Join(dir, "blank.img"), 64<<20)
	tree := filepath.Join(dir, "keep-tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "hello.txt"), []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keep := sizedFile(t, filepath.Join(dir, "keep.img"), 32<<20)
	run(t, "mkfs.ext4", "-q", "-F", "-L", "keep", "-d", tree, keep, "16M") // the filesystem is half its disk: resize grows it
	junk := filepath.Join(dir, "junk.img")
	junkData := make([]byte, 4<<20)
	_, _ = rand.Read(junkData)
	if err := os.WriteFile(junk, junkData, 0o644); err != nil {
		t.Fatal(err)
	}
	xfs := sizedFile(t, filepath.Join(dir, "xfs.img"), 300<<20) // mkfs.xfs's least
	fat := sizedFile(t, filepath.Join(dir, "fat.img"), 32<<20)
	disks := []qemu.Disk{{Path: oem}, {Path: blank}, {Path: keep}, {Path: junk}, {Path: xfs}, {Path: fat}}

	var bootID string
	t.Run("first boot formats the blank disk", func(t *testing.T) {
		vm := qemu.Start(t, qemu.Options{Disks: disks, NIC: "none", Append: []string{"kurma.test.marker=m1"}})
		vm.Expect(t, `kurma: disk path=/dev/vdb: /dev/vdb is no filesystem \(blank\): blank, format: if-blank`, bootTimeout)
		m := vm.Expect(t, `kurma: disk path=/dev/vdb: formatted /dev/vdb as ext4 \(UUID [0-9a-f-]+\) in (\d+) ms`, time.Minute)
		t.Logf("mke2fs of 64 MiB took %s ms under TCG", m[1])
		vm.Expect(t, `kurma: disk label=keep: /dev/vdc is ext4 \(label "keep", UUID [0-9a-f-]+\): used as it is`, time.Minute)
		vm.Expect(t, `kurma: disk /dev/vdc: grew the filesystem from 16 to 32 MiB`, time.Minute)
		vm.Expect(t, `kurma: disk path=/dev/vdb: /dev/vdb mounted on /var/lib/kurma/disks/[0-9a-f-]+ \(ext4\) in \d+ ms, usages \[volumes pods\]`, time.Minute)
		vm.Expect(t, `kurma: disk label=keep: /dev/vdc mounted on .* usages \[images\]`, time.Minute)
		vm.Expect(t, `kurma: error: disk /dev/vdd holds data of an unknown kind \(no filesystem signature\) and format is if-blank: not touched`, time.Minute)
		vm.ExpectSeen(t, `kurma: disk path=/dev/vde: formatted /dev/vde as xfs \(UUID [0-9a-f-]+\) in \d+ ms`, time.Minute)
		vm.ExpectSeen(t, `kurma: disk path=/dev/vde: /dev/vde mounted on /var/lib/kurma/disks/[0-9a-f-]+ \(xfs\) in \d+ ms, usages \[logs\]`, time.Minute)
		vm.ExpectSeen(t, `kurma: disk path=/dev/vdf: formatted /dev/vdf as vfat \(UUID [0-9A-F-]+\) in \d+ ms`, time.Minute)
		vm.ExpectSeen(t, `kurma: disk path=/dev/vdf: /dev/vdf mounted on /var/lib/kurma/disks/[0-9A-F-]+ \(vfat\)`, time.Minute)
		vm.Expect(t, `kurma:   disks +\d+ ms  FAILED`, time.Minute)
		bootID = vm.Expect(t, `kurma: test: marker /var/lib/kurma/volumes/m1 written: written by boot (\S+)`, time.Minute)[1]
		vm.Expect(t, `kurma: ready`, time.Minute)
		vm.SendKey(t, "ctrl-alt-delete")
		vm.WaitExit(t, time.Minute)
	})
	if t.Failed() {
		return
	}
	if err := os.Truncate(xfs, 400<<20); err != nil {
		t.Fatal(err)
	}
	t.Run("second boot finds the marker", func(t *testing.T) {
		vm := qemu.Start(t, qemu.Options{Disks: disks, NIC: "none", Append: []string{"kurma.test.marker=m1"}})
		vm.Expect(t, `kurma: disk path=/dev/vdb: /dev/vdb is ext4 \(UUID [0-9a-f-]+\): used as it is`, bootTimeout)
		vm.Expect(t, `kurma: test: marker /var/lib/kurma/volumes/m1 found: written by boot `+bootID, time.Minute)
		vm.ExpectSeen(t, `kurma: disk /dev/vde: grew the filesystem from 300 to 400 MiB`, time.Minute)
		vm.Expect(t, `kurma: ready`, time.Minute)
		if regexp.MustCompile(`kurma: disk .*: formatted /dev/`).MatchString(vm.Console()) {
			t.Error("the second boot formatted a disk")
		}
		vm.SendKey(t, "ctrl-alt-delete")
		vm.WaitExit(t, time.Minute)
	})

	if got := debugfs(t, blank, "cat /volumes/m1"); got != "written by boot "+bootID+"\n" {
		t.Errorf("marker on the disk: %q", got)
	}
	if got := debugfs(t, keep, "cat /hello.txt"); got != "keep me\n" {
		t.Errorf("hello.txt on the kept disk: %q", got)
	}
	if got := debugfs(t, keep, "ls -l /"); !strings.Contains(got, "images") {
		t.Errorf("no images directory on the kept disk:\n%s", got)
	}
	if data, err := os.ReadFile(junk); err != nil || !bytes.Equal(data, junkData) {
		t.Errorf("the disk of random data changed (%v)", err)
	}
}

// TestNetworkDHCP boots with an e1000 NIC (carrier comes about 2 s after
// link up) on QEMU's user network with restrict=on: the lease has an
// address but no router and no DNS. The configuration URL on the command
// line, with ${mac}, is served by a test server on the host through
// guestfwd and sets the hostname, a DNS server and a proxy. A host-side
// client then reaches the guest's echo server through hostfwd.
func TestNetworkDHCP(t *testing.T) {
	qemu.Skip(t)
	const mac = "52:54:00:12:34:56"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+mac+".yaml" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "hostname: from-url\nnetwork:\n  dns: {servers: [10.0.2.3]}\n  proxy: {http: \"http://10.0.2.100:3128\"}\n")
	}))
	defer srv.Close()
	vm := qemu.Start(t, qemu.Options{
		NIC:      "e1000",
		HostFwd:  []int{7777},
		GuestFwd: map[string]string{"10.0.2.100:80": srv.Listener.Addr().String()},
		Append:   []string{"kurma.debug=1", "kurma.test.echo=7777", "kurma.config.url=http://10.0.2.100/${mac}.yaml"},
	})
	vm.Expect(t, `kurma: hostname kurma-525400123456 \(fallback\)`, bootTimeout)
	m := vm.Expect(t, `kurma: network: eth0: dhcp lease 10.0.2.15/24 from 10.0.2.2, for 24h0m0s \(renew after 12h0m0s\), in (\d+) ms \(carrier after (\d+) ms\)`, time.Minute)
	t.Logf("e1000: lease %s ms after link up, carrier after %s ms", m[1], m[2])
	vm.Expect(t, `kurma-debug: resolv.conf: # no name servers`, time.Minute)
	vm.Expect(t, `kurma: config: datasource url: read http://10.0.2.100/`+mac+`.yaml in`, time.Minute)
	vm.Expect(t, `kurma: hostname from-url \(configuration\)`, time.Minute)
	vm.Expect(t, `kurma-debug: resolv.conf: nameserver 10.0.2.3`, time.Minute)
	vm.Expect(t, `kurma: warning: time: no NTP server answered`, time.Minute)
	vm.Expect(t, `kurma: network: eth0 `+mac+` up 10.0.2.15/24(,[0-9a-f:]+/64)* gateway none( gateway6 \S+)? \(dhcp from 10.0.2.2, lease 24h0m0s\)`, time.Minute)
	vm.Expect(t, `kurma: network: dns 10.0.2.3 search none`, time.Minute)
	vm.Expect(t, `kurma: test: echo server on \[::\]:7777`, time.Minute)
	vm.Expect(t, `kurma: ready \(hostname from-url\)`, time.Minute)
	if strings.Contains(vm.Console(), "FAILED") {
		t.Error("a phase failed")
	}

	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", vm.HostPort(7777)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	msg := fmt.Sprintf("hello through hostfwd %d\n", time.Now().UnixNano())
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || got != msg {
		t.Errorf("echo: %q, %v; want %q", got, err, msg)
	}
	vm.SendKey(t, "ctrl-alt-delete")
	vm.WaitExit(t, time.Minute)
}

// TestNetworkStatic boots with a static configuration from an OEM disk:
// the link has exactly the configured address, default gateway and route,
// /etc/resolv.conf the configured DNS, and the machine the configured
// hostname (DHCP is not asked). Then a config URL, read over that
// network, moves the link to another address: it is configured anew.
func TestNetworkStatic(t *testing.T) {
	qemu.Skip(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "network:\n  interfaces:\n    - mac: \"52:54:00:12:34:56\"\n      addresses: [10.0.2.51/24]\n      gateway: 10.0.2.2\n"+
			"      routes:\n        - {to: 192.168.200.0/24, via: 10.0.2.2, metric: 50}\n")
	}))
	defer srv.Close()
	oem := vfatImage(t, t.TempDir(), "KURMA_OEM", map[string]string{"config.yaml": `hostname: static-node
network:
  interfaces:
    - mac: "52:54:00:12:34:56"
      addresses: [10.0.2.50/24]
      gateway: 10.0.2.2
      routes:
        - {to: 192.168.200.0/24, via: 10.0.2.2, metric: 50}
  dns:
    servers: [10.0.2.3]
    search: [kurma.test]
services:
  ntp: {enabled: false}
`})
	vm := qemu.Start(t, qemu.Options{Disks: []qemu.Disk{{Path: oem}}, Append: []string{"kurma.debug=1", "kurma.config.url=http://10.0.2.100/node.yaml"},
		GuestFwd: map[string]string{"10.0.2.100:80": srv.Listener.Addr().String()}})
	vm.Expect(t, `kurma: hostname static-node \(configuration\)`, bootTimeout)
	vm.Expect(t, `kurma: network: eth0: static \[10.0.2.50/24\] gateway 10.0.2.2 and 1 routes`, time.Minute)
	vm.Expect(t, `kurma-debug: resolv.conf: search kurma.test\r?\n`, time.Minute)
	vm.Expect(t, `kurma-debug: resolv.conf: nameserver 10.0.2.3\r?\n`, time.Minute)
	vm.Expect(t, `kurma: config: datasource url: read http://10.0.2.100/node.yaml`, time.Minute)
	vm.Expect(t, `kurma: network: eth0: its interface entry changed: configured anew`, time.Minute)
	vm.Expect(t, `kurma: network: eth0: static \[10.0.2.51/24\] gateway 10.0.2.2 and 1 routes`, time.Minute)
	routes := vm.Expect(t, `kurma-debug: routes=(.*)`, time.Minute)[1]
	for _, want := range []string{"default via 10.0.2.2 dev eth0", "192.168.200.0/24 via 10.0.2.2 dev eth0 metric 50", "10.0.2.0/24 dev eth0"} {
		if !strings.Contains(routes, want) {
			t.Errorf("routes %q: no %q", routes, want)
		}
	}
	vm.Expect(t, `kurma: network: eth0 52:54:00:12:34:56 up 10.0.2.51/24(,[0-9a-f:]+/64)* gateway 10.0.2.2( gateway6 \S+)? \(static\)\r?\n`, time.Minute)
	vm.Expect(t, `kurma: network: dns 10.0.2.3 search kurma.test\r?\n`, time.Minute)
	vm.Expect(t, `kurma: ready \(hostname static-node\)`, time.Minute)
	if strings.Contains(vm.Console(), "dhcp") {
		t.Error("DHCP ran on a static link")
	}
	if !strings.Contains(vm.Console(), "kurma: time: NTP is off") {
		t.Error("NTP ran, switched off by the OEM disk")
	}
	if strings.Contains(vm.Console(), "10.0.2.50/24 gateway") {
		t.Error("the summary shows the address the config URL replaced")
	}
	vm.SendKey(t, "ctrl-alt-delete")
	vm.WaitExit(t, time.Minute)
}

// sizedFile makes a sparse file of size bytes.
func sizedFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

// debugfs runs a debugfs request on an ext4 image, read-only.
func debugfs(t *testing.T, img, request string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command("debugfs", "-R", request, img)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs -R %q %s: %v\n%s", request, img, err, errOut.String())
	}
	return out.String()
}
