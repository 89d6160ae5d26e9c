package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/kurmaos/kurma/internal/ctxtime"
)

// requested are the options the client asks for.
var requested = []dhcpv4.OptionCode{
	dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
	dhcpv4.OptionHostName, dhcpv4.OptionDomainName, dhcpv4.OptionInterfaceMTU,
	dhcpv4.OptionBroadcastAddress, dhcpv4.OptionNTPServers, dhcpv4.OptionIPAddressLeaseTime,
	dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue,
	dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionClasslessStaticRoute,
}

// Client gets and keeps a lease on one interface.
type Client struct {
	nc       *nclient4.Client
	hostname string
	// RetryMin and RetryMax bound the wait between failed attempts to get
	// a lease: it doubles from RetryMin up to RetryMax.
	RetryMin, RetryMax time.Duration
	// Debugf, when set, hears of every failed attempt.
	Debugf func(format string, args ...any)
}

// NewClient opens a client on the interface ifname whose hardware
// address is hw. conn is the packet connection; nil opens a raw socket
// on the interface (root only). hostname, when not empty, is sent to the
// server (option 12) so that it can register the name.
func NewClient(ifname string, hw net.HardwareAddr, conn net.PacketConn, hostname string) (*Client, error) {
	var err error
	if conn == nil {
		if conn, err = nclient4.NewRawUDPConn(ifname, nclient4.ClientPort); err != nil {
			return nil, fmt.Errorf("dhcp on %s: raw socket: %w", ifname, err)
		}
	}
	// An attempt waits 0.5 s for an answer, then 1, 2 and 4 s: quicker
	// than RFC 2131's 4 s, since at boot a first DISCOVER sent while the
	// link settles can be lost, and the boot waits for the next.
	nc, err := nclient4.NewWithConn(conn, hw, nclient4.WithTimeout(500*time.Millisecond), nclient4.WithRetry(4))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dhcp on %s: %w", ifname, err)
	}
	return &Client{nc: nc, hostname: hostname, RetryMin: time.Second, RetryMax: 30 * time.Second}, nil
}

// Close closes the client's socket.
func (c *Client) Close() error { return c.nc.Close() }

func (c *Client) modifiers() []dhcpv4.Modifier {
	m := []dhcpv4.Modifier{dhcpv4.WithRequestedOptions(requested...)}
	if c.hostname != "" {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptHostName(c.hostname)))
	}
	return m
}

// Acquire gets a lease (DISCOVER, OFFER, REQUEST, ACK), trying again
// until it has one or ctx ends.
func (c *Client) Acquire(ctx context.Context) (*Lease, error) {
	wait := c.RetryMin
	for {
		l, err := c.acquireOnce(ctx)
		if err == nil {
			return l, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no lease: %w (last attempt: %v)", ctx.Err(), err)
		}
		if c.Debugf != nil {
			c.Debugf("dhcp: no lease (%v); asking again in %s", err, wait)
		}
		if err := ctxtime.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("no lease: %w", err)
		}
		wait = min(2*wait, c.RetryMax)
	}
}

func (c *Client) acquireOnce(ctx context.Context) (*Lease, error) {
	raw, err := c.nc.Request(ctx, c.modifiers()...)
	if err != nil {
		return nil, err
	}
	l, err := FromACK(raw.ACK, time.Now())
	if err != nil {
		return nil, err
	}
	l.raw = raw
	return l, nil
}

// renew asks the server to extend the lease.
func (c *Client) renew(ctx context.Context, old *Lease) (*Lease, error) {
	raw, err := c.nc.Renew(ctx, old.raw, c.modifiers()...)
	if err != nil {
		return nil, err
	}
	l, err := FromACK(raw.ACK, time.Now())
	if err != nil {
		return nil, err
	}
	l.raw = raw
	return l, nil
}

// Release gives the lease back to its server.
func (c *Client) Release(l *Lease) error { return c.nc.Release(l.raw) }

// EventKind says what happened to a lease.
type EventKind int

// The events of Keep.
const (
	// Acquired: a new lease, after the one before expired or was refused.
	Acquired EventKind = iota
	// Renewed: the server extended the lease (it may have changed its
	// options).
	Renewed
	// Expired: the lease ran out, or the server refused to renew it; the
	// address must go.
	Expired
)

func (k EventKind) String() string {
	return [...]string{"acquired", "renewed", "expired"}[k]
}

// Event is a change of the lease.
type Event struct {
	Kind  EventKind
	Lease *Lease // the new lease; the one that ended for Expired
	Old   *Lease // the lease before, for Renewed
	Err   error  // why the lease expired
}

// Keep keeps a lease until ctx ends: it renews it at T1 and, failing
// that, until it expires (RFC 2131 4.4.5); then it starts over. Every
// change is reported to on, from Keep's goroutine.
func (c *Client) Keep(ctx context.Context, l *Lease, on func(Event)) {
	for ctx.Err() == nil {
		if l == nil {
			nl, err := c.Acquire(ctx)
			if err != nil {
				return
			}
			l = nl
			on(Event{Kind: Acquired, Lease: l})
		}
		if l.Infinite() {
			<-ctx.Done()
			return
		}
		if ctxtime.Sleep(ctx, time.Until(l.Acquired.Add(l.Renew))) != nil {
			return
		}
		l = c.extend(ctx, l, on)
	}
}

// extend renews l until it succeeds or l expires; it returns the lease
// in force after that, nil when there is none.
func (c *Client) extend(ctx context.Context, l *Lease, on func(Event)) *Lease {
	var lastErr error
	for {
		left := time.Until(l.Expires())
		if left <= 0 {
			on(Event{Kind: Expired, Lease: l, Err: fmt.Errorf("not renewed: %w", lastErr)})
			return nil
		}
		actx, cancel := context.WithTimeout(ctx, min(left, 10*time.Second))
		nl, err := c.renew(actx, l)
		cancel()
		if err == nil {
			on(Event{Kind: Renewed, Lease: nl, Old: l})
			return nl
		}
		if ctx.Err() != nil {
			return l
		}
		var nak *nclient4.ErrNak
		if errors.As(err, &nak) {
			on(Event{Kind: Expired, Lease: l, Err: err})
			return nil
		}
		lastErr = err
		// Half the time that is left, at least a second and at most a
		// minute, as RFC 2131 suggests.
		if ctxtime.Sleep(ctx, min(max(time.Until(l.Expires())/2, time.Second), time.Minute)) != nil {
			return l
		}
	}
}
