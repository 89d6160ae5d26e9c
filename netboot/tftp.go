package netboot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// TFTP opcodes and error codes (RFC 1350, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6

	errNotDefined    uint16 = 0
	errNotFound      uint16 = 1
	errAccess        uint16 = 2
	errIllegalOp     uint16 = 4
	errUnknownTID    uint16 = 5
	errOptionRefused uint16 = 8

	defaultBlockSize = 512
	maxBlockSize     = 65464 // RFC 2348
	minBlockSize     = 8
	defaultTimeout   = time.Second
	retries          = 5
)

// TFTPServer serves the files under a directory, read-only.
type TFTPServer struct {
	root *os.Root
	logf func(format string, a ...any)
	// Timeout is how long to wait for an acknowledgement before sending
	// again, unless the client asks for another (the timeout option).
	Timeout time.Duration
}

// NewTFTPServer serves dir; logf, if not nil, is told of each transfer.
func NewTFTPServer(dir string, logf func(format string, a ...any)) (*TFTPServer, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &TFTPServer{root: root, logf: logf, Timeout: defaultTimeout}, nil
}

// Serve answers read requests arriving on conn until ctx ends. Each
// transfer runs from a new UDP port of its own (its transfer ID), as RFC
// 1350 has it.
func (s *TFTPServer) Serve(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() }) // unblocks ReadFrom
	defer stop()
	buf := make([]byte, 1500)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tftp: %w", err)
		}
		req := append([]byte(nil), buf[:n]...)
		go s.transfer(ctx, conn, addr, req)
	}
}

// A request is a parsed RRQ.
type request struct {
	file, mode string
	options    map[string]string
}

func parseRequest(p []byte) (*request, error) {
	if len(p) < 2 {
		return nil, errors.New("short packet")
	}
	fields := bytes.Split(p[2:], []byte{0})
	if len(fields) < 3 || len(fields[len(fields)-1]) != 0 {
		return nil, errors.New("malformed request")
	}
	fields = fields[:len(fields)-1]
	r := &request{file: string(fields[0]), mode: strings.ToLower(string(fields[1])), options: map[string]string{}}
	if r.mode != "octet" && r.mode != "netascii" {
		return nil, fmt.Errorf("mode %q", r.mode)
	}
	opts := fields[2:]
	if len(opts)%2 != 0 {
		return nil, errors.New("an option without a value")
	}
	for i := 0; i < len(opts); i += 2 {
		r.options[strings.ToLower(string(opts[i]))] = string(opts[i+1])
	}
	return r, nil
}

func (s *TFTPServer) transfer(ctx context.Context, listener net.PacketConn, client net.Addr, p []byte) {
	// The transfer's own socket, on the address the request came to.
	host := ""
	if a, ok := listener.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsUnspecified() {
		host = a.IP.String()
	}
	conn, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		s.logf("tftp: %s: %v", client, err)
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	if len(p) < 2 || binary.BigEndian.Uint16(p) != opRRQ {
		if len(p) >= 2 && binary.BigEndian.Uint16(p) == opWRQ {
			sendError(conn, client, errAccess, "read-only server")
		} else {
			sendError(conn, client, errIllegalOp, "expected a read request")
		}
		return
	}
	req, err := parseRequest(p)
	if err != nil {
		sendError(conn, client, errIllegalOp, err.Error())
		return
	}
	name := strings.TrimLeft(req.file, "/")
	f, err := s.root.Open(name)
	if err != nil {
		code, msg := errNotFound, "file not found"
		if !errors.Is(err, os.ErrNotExist) {
			code, msg = errAccess, "access violation"
		}
		s.logf("tftp: %s: %s: %v", client, req.file, err)
		sendError(conn, client, code, msg)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		sendError(conn, client, errAccess, "not a regular file")
		return
	}
	start := time.Now()
	t := &tftpTransfer{conn: conn, client: client, blockSize: defaultBlockSize, timeout: s.Timeout}
	oack := t.negotiate(req.options, fi.Size())
	if err := t.send(f, oack); err != nil {
		s.logf("tftp: %s: %s: %v", client, req.file, err)
		return
	}
	s.logf("tftp: %s: %s: %d bytes in %s", client, req.file, fi.Size(), time.Since(start).Round(time.Millisecond))
}

type tftpTransfer struct {
	conn      net.PacketConn
	client    net.Addr
	blockSize int
	timeout   time.Duration
}

// negotiate applies the options the server knows and returns the OACK
// to send, or nil when the client asked for none of them.
func (t *tftpTransfer) negotiate(opts map[string]string, size int64) []byte {
	var ack []byte
	add := func(k, v string) {
		if ack == nil {
			ack = []byte{0, opOACK}
		}
		ack = append(append(append(append(ack, k...), 0), v...), 0)
	}
	for _, k := range []string{"blksize", "tsize", "timeout"} {
		v, ok := opts[k]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			continue // an option the server cannot read is left out
		}
		switch k {
		case "blksize":
			if n < minBlockSize {
				continue
			}
			t.blockSize = min(n, maxBlockSize)
			add(k, strconv.Itoa(t.blockSize))
		case "tsize":
			add(k, strconv.FormatInt(size, 10))
		case "timeout":
			if n < 1 || n > 255 {
				continue
			}
			t.timeout = time.Duration(n) * time.Second
			add(k, v)
		}
	}
	return ack
}

// send sends the OACK, if any, then the file block by block, each
// acknowledged before the next; an unacknowledged packet is sent again
// up to retries times. Block numbers wrap from 65535 to 0, as iPXE,
// PXE ROMs and other servers expect of files over 32 MiB at 512 bytes.
func (t *tftpTransfer) send(r io.Reader, oack []byte) error {
	if oack != nil {
		if err := t.exchange(oack, 0); err != nil {
			return err
		}
	}
	data := make([]byte, 4+t.blockSize)
	binary.BigEndian.PutUint16(data, opDATA)
	for block := uint16(1); ; block++ {
		n, err := io.ReadFull(r, data[4:])
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			sendError(t.conn, t.client, errNotDefined, "read error")
			return err
		}
		binary.BigEndian.PutUint16(data[2:], block)
		if err := t.exchange(data[:4+n], block); err != nil {
			return err
		}
		if n < t.blockSize {
			return nil
		}
	}
}

// exchange sends a packet until the client acknowledges block.
func (t *tftpTransfer) exchange(packet []byte, block uint16) error {
	buf := make([]byte, 1500)
	for try := 0; try < retries; try++ {
		if _, err := t.conn.WriteTo(packet, t.client); err != nil {
			return err
		}
		deadline := time.Now().Add(t.timeout)
		for {
			if err := t.conn.SetReadDeadline(deadline); err != nil {
				return err
			}
			n, addr, err := t.conn.ReadFrom(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break // send again
			}
			if err != nil {
				return err
			}
			if addr.String() != t.client.String() {
				sendError(t.conn, addr, errUnknownTID, "unknown transfer ID")
				continue
			}
			if n < 4 {
				continue
			}
			switch binary.BigEndian.Uint16(buf) {
			case opACK:
				if binary.BigEndian.Uint16(buf[2:]) == block {
					return nil
				}
				// a duplicate of an earlier ACK: wait for this one
			case opERROR:
				if block == 0 && binary.BigEndian.Uint16(buf[2:]) == errOptionRefused {
					return errors.New("the client refused the options")
				}
				return fmt.Errorf("the client sent error %d: %s", binary.BigEndian.Uint16(buf[2:]), bytes.TrimRight(buf[4:n], "\x00"))
			}
		}
	}
	return fmt.Errorf("no acknowledgement of block %d after %d tries", block, retries)
}

func sendError(conn net.PacketConn, to net.Addr, code uint16, msg string) {
	p := make([]byte, 4, 5+len(msg))
	binary.BigEndian.PutUint16(p, opERROR)
	binary.BigEndian.PutUint16(p[2:], code)
	p = append(append(p, msg...), 0)
	_, _ = conn.WriteTo(p, to) // best effort: the client may be gone
}
