package dhcp

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// server is a DHCP server in the test's process, joined to the client by
// a PacketConn: enough of RFC 2131 to offer, grant, renew and refuse.
type server struct {
	mu       sync.Mutex
	lease    time.Duration
	nak      bool // refuse the next renewal
	requests []string
	toClient chan []byte
}

// serverConn is the client's end of the wire.
type serverConn struct {
	s      *server
	closed chan struct{}
	once   sync.Once
}

func (c *serverConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.s.toClient:
		return copy(b, p), &net.UDPAddr{IP: net.IPv4(10, 9, 0, 1), Port: 67}, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *serverConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	req, err := dhcpv4.FromBytes(b)
	if err != nil {
		return 0, err
	}
	if reply := c.s.answer(req); reply != nil {
		c.s.toClient <- reply.ToBytes()
	}
	return len(b), nil
}

func (c *serverConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *serverConn) LocalAddr() net.Addr              { return &net.UDPAddr{Port: 68} }
func (c *serverConn) SetDeadline(time.Time) error      { return nil }
func (c *serverConn) SetReadDeadline(time.Time) error  { return nil }
func (c *serverConn) SetWriteDeadline(time.Time) error { return nil }

func (s *server) answer(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind := req.MessageType()
	renewal := kind == dhcpv4.MessageTypeRequest && !req.ClientIPAddr.IsUnspecified()
	if renewal {
		s.requests = append(s.requests, "RENEW")
	} else {
		s.requests = append(s.requests, kind.String())
	}
	var reply dhcpv4.MessageType
	switch {
	case kind == dhcpv4.MessageTypeDiscover:
		reply = dhcpv4.MessageTypeOffer
	case renewal && s.nak:
		s.nak = false
		reply = dhcpv4.MessageTypeNak
	case kind == dhcpv4.MessageTypeRequest:
		reply = dhcpv4.MessageTypeAck
	default:
		return nil
	}
	m, _ := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(reply),
		dhcpv4.WithYourIP(net.IPv4(10, 9, 0, 20)),
		dhcpv4.WithServerIP(net.IPv4(10, 9, 0, 1)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 9, 0, 1))),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(10, 9, 0, 1))),
		dhcpv4.WithOption(dhcpv4.OptHostName("granted")),
		dhcpv4.WithLeaseTime(uint32(s.lease/time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(s.lease/4)),
	)
	return m
}

func (s *server) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// TestKeep gets a lease, renews it at T1, is refused at the next renewal
// (the lease ends) and gets a new one.
func TestKeep(t *testing.T) {
	s := &server{lease: 4 * time.Second, toClient: make(chan []byte, 4)}
	conn := &serverConn{s: s, closed: make(chan struct{})}
	c, err := NewClient("test0", net.HardwareAddr{2, 0, 0, 0, 0, 1}, conn, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := c.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Address.String() != "10.9.0.20/24" || l.Hostname != "granted" || l.Renew != time.Second {
		t.Fatalf("lease %v, renew after %s", l, l.Renew)
	}
	events := make(chan Event, 8)
	go c.Keep(ctx, l, func(e Event) {
		if e.Kind == Renewed {
			s.mu.Lock()
			s.nak = true // refuse the next one
			s.mu.Unlock()
		}
		events <- e
	})
	var got []EventKind
	for len(got) < 3 {
		select {
		case e := <-events:
			got = append(got, e.Kind)
		case <-ctx.Done():
			t.Fatalf("events %v, then nothing; the server saw %v", got, s.log())
		}
	}
	if want := []EventKind{Renewed, Expired, Acquired}; !equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	want := []string{"DISCOVER", "REQUEST", "RENEW", "RENEW", "DISCOVER", "REQUEST"}
	if log := s.log(); !equal(log, want) {
		t.Errorf("the server saw %v, want %v", log, want)
	}
}

// TestAcquireBounded: without a server, Acquire gives up when ctx ends.
func TestAcquireBounded(t *testing.T) {
	conn := &serverConn{s: &server{toClient: make(chan []byte)}, closed: make(chan struct{})}
	c, err := NewClient("test0", net.HardwareAddr{2, 0, 0, 0, 0, 1}, &silentConn{conn}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Acquire(ctx); err == nil {
		t.Fatal("a lease without a server")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Acquire returned %s after its context ended", took-1500*time.Millisecond)
	}
}

// silentConn is a wire with no server on it.
type silentConn struct{ *serverConn }

func (c *silentConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
