package netboot

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startTFTP serves dir on a loopback port and returns its address.
func startTFTP(t *testing.T, dir string) net.Addr {
	t.Helper()
	srv, err := NewTFTPServer(dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	srv.Timeout = 200 * time.Millisecond
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn.LocalAddr()
}

// tftpGet is a TFTP client: it reads file with the options given and
// returns the data and the options the server acknowledged. dropFirst
// ignores the first DATA packet, so the server must send it again.
func tftpGet(t *testing.T, server net.Addr, file string, opts map[string]string, dropFirst bool) ([]byte, map[string]string, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := []byte{0, opRRQ}
	req = append(append(req, file...), 0)
	req = append(append(req, "octet"...), 0)
	for _, k := range sortedOpts(opts) {
		req = append(append(append(append(req, k...), 0), opts[k]...), 0)
	}
	if _, err := conn.WriteTo(req, server); err != nil {
		t.Fatal(err)
	}
	var data []byte
	acked := map[string]string{}
	blockSize := 512
	next := uint16(1)
	buf := make([]byte, 70000)
	dropped := false
	for {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return nil, nil, err
		}
		ack := func(block uint16) {
			p := []byte{0, opACK, 0, 0}
			binary.BigEndian.PutUint16(p[2:], block)
			_, _ = conn.WriteTo(p, from)
		}
		switch binary.BigEndian.Uint16(buf) {
		case opOACK:
			f := bytes.Split(buf[2:n], []byte{0})
			for i := 0; i+1 < len(f); i += 2 {
				acked[string(f[i])] = string(f[i+1])
			}
			if v, ok := acked["blksize"]; ok {
				blockSize, _ = strconv.Atoi(v)
			}
			ack(0)
		case opDATA:
			block := binary.BigEndian.Uint16(buf[2:])
			if dropFirst && !dropped {
				dropped = true
				continue
			}
			if block == next {
				data = append(data, buf[4:n]...)
				next++
			}
			ack(block)
			if n-4 < blockSize {
				return data, acked, nil
			}
		case opERROR:
			return nil, nil, fmt.Errorf("error %d: %s", binary.BigEndian.Uint16(buf[2:]), bytes.TrimRight(buf[4:n], "\x00"))
		}
	}
}

func sortedOpts(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestTFTP(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 70000) // 1,120,000 bytes
	exact := bytes.Repeat([]byte{7}, 1024)                 // two full blocks, then an empty one
	for name, data := range map[string][]byte{"vmlinuz": big, "exact": exact, "sub/boot.ipxe": []byte("#!ipxe\n")} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	server := startTFTP(t, dir)

	tests := []struct {
		name      string
		file      string
		opts      map[string]string
		dropFirst bool
		want      []byte
		wantOpts  map[string]string
		wantErr   string
	}{
		{name: "plain 512-byte blocks", file: "vmlinuz", want: big, wantOpts: map[string]string{}},
		{name: "blksize and tsize", file: "/vmlinuz", opts: map[string]string{"blksize": "1468", "tsize": "0"}, want: big,
			wantOpts: map[string]string{"blksize": "1468", "tsize": strconv.Itoa(len(big))}},
		{name: "a lost block is sent again", file: "vmlinuz", opts: map[string]string{"blksize": "8192"}, dropFirst: true, want: big,
			wantOpts: map[string]string{"blksize": "8192"}},
		{name: "a multiple of the block size ends with an empty block", file: "exact", want: exact, wantOpts: map[string]string{}},
		{name: "subdirectory", file: "sub/boot.ipxe", opts: map[string]string{"timeout": "3", "windowsize": "4"}, want: []byte("#!ipxe\n"),
			wantOpts: map[string]string{"timeout": "3"}},
		{name: "missing file", file: "nothing", wantErr: "error 1: file not found"},
		{name: "no escape by ..", file: "../secret", wantErr: "error 2: access violation"},
		{name: "no escape by a symbolic link", file: "link", wantErr: "error 2: access violation"},
		{name: "directory", file: "sub", wantErr: "error 2: not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, opts, err := tftpGet(t, server, tc.file, tc.opts, tc.dropFirst)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %d bytes, want %d", len(got), len(tc.want))
			}
			if fmt.Sprint(opts) != fmt.Sprint(tc.wantOpts) {
				t.Errorf("acknowledged options %v, want %v", opts, tc.wantOpts)
			}
		})
	}
}

func TestTFTPRefusesWrites(t *testing.T) {
	server := startTFTP(t, t.TempDir())
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.WriteTo([]byte("\x00\x02file\x00octet\x00"), server); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := buf[:n]; binary.BigEndian.Uint16(got) != opERROR || binary.BigEndian.Uint16(got[2:]) != errAccess {
		t.Errorf("got %q, want an access violation error", got)
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"\x00\x01f\x00octet\x00", "f octet map[]", ""},
		{"\x00\x01f\x00OCTET\x00BlkSize\x001024\x00", "f octet map[blksize:1024]", ""},
		{"\x00\x01f\x00mail\x00", "", `mode "mail"`},
		{"\x00\x01f\x00octet", "", "malformed"},
		{"\x00\x01f\x00octet\x00blksize\x00", "", "without a value"},
		{"\x00", "", "short"},
	}
	for _, tc := range tests {
		r, err := parseRequest([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseRequest(%q): error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRequest(%q): %v", tc.in, err)
			continue
		}
		if got := fmt.Sprint(r.file, " ", r.mode, " ", r.options); got != tc.want {
			t.Errorf("parseRequest(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
