// Package timesync sets the clock from NTP servers (SNTP, RFC 4330, with
// github.com/beevik/ntp) and keeps it in step: a large error is stepped
// at once, a small one slewed by the kernel, so time never runs
// backwards under running programs once it is close. After each
// correction the kernel is told its clock is synchronised, which also
// has it write the time to the hardware clock (RTC) every 11 minutes, so
// that the next boot starts close.
package timesync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/beevik/ntp"

	"github.com/kurmaos/kurma/internal/ctxtime"
)

// Defaults of Syncer.
const (
	// DefaultTimeout bounds one query, name resolution included.
	DefaultTimeout = 2 * time.Second
	// StepLimit is the largest error that is slewed; a larger one is
	// stepped.
	StepLimit = 500 * time.Millisecond
	// MinPoll and MaxPoll bound the interval between synchronisations:
	// it starts at MinPoll, doubles after each success up to MaxPoll, and
	// goes back to MinPoll after a failure.
	MinPoll = 64 * time.Second
	MaxPoll = 1024 * time.Second
)

// Syncer synchronises the clock with NTP servers.
type Syncer struct {
	// Servers are host names or addresses, with an optional :port; tried
	// in order until one answers.
	Servers []string
	// Learned, when set, returns servers learned at run time (from DHCP
	// leases), asked before Servers; it is called at each attempt.
	Learned func() []string
	// Timeout bounds each query (DefaultTimeout when zero).
	Timeout time.Duration
	// Query asks one server for the clock's offset; nil is SNTP.
	Query func(ctx context.Context, server string, timeout time.Duration) (time.Duration, error)
	// Step sets the clock forward by offset (backward when negative), and
	// Slew has the kernel make up a small offset gradually; nil are the
	// real clock's (root only).
	Step, Slew func(offset time.Duration) error
	// Synced tells the kernel its clock is within maxError of the
	// server's; nil is the real clock's (adjtimex).
	Synced func(maxError time.Duration) error
	Logf   func(format string, args ...any)
}

// Result is one synchronisation.
type Result struct {
	Server  string
	Offset  time.Duration
	Stepped bool
}

// Once queries the servers in order and corrects the clock from the first
// that answers. The error joins every server's when none does.
func (s *Syncer) Once(ctx context.Context) (Result, error) {
	servers := s.Asked()
	if len(servers) == 0 {
		return Result{}, errors.New("no NTP servers (none configured, none from DHCP)")
	}
	query := s.Query
	if query == nil {
		query = sntp
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var errs []error
	for _, srv := range servers {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		off, err := query(ctx, srv, timeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", srv, err))
			continue
		}
		r := Result{Server: srv, Offset: off}
		if off > StepLimit || off < -StepLimit {
			r.Stepped = true
			err = call(s.Step, stepClock, off)
		} else {
			err = call(s.Slew, slewClock, off)
		}
		if err != nil {
			return r, fmt.Errorf("correct the clock by %s: %w", off, err)
		}
		// A slew leaves the error to make up; a step leaves next to none
		// (the query's own, bounded by its round trip).
		maxError := timeout
		if !r.Stepped {
			maxError += off.Abs()
		}
		if err := s.synced(maxError); err != nil {
			return r, fmt.Errorf("mark the clock synchronised: %w", err)
		}
		return r, nil
	}
	return Result{}, errors.Join(errs...)
}

// Asked lists the servers an attempt asks, in order: the learned ones,
// then the configured ones, each once.
func (s *Syncer) Asked() []string {
	var all []string
	if s.Learned != nil {
		all = append(all, s.Learned()...)
	}
	all = append(all, s.Servers...)
	seen := map[string]bool{}
	out := all[:0]
	for _, srv := range all {
		if srv != "" && !seen[srv] {
			seen[srv] = true
			out = append(out, srv)
		}
	}
	return out
}

func (s *Syncer) synced(maxError time.Duration) error {
	if s.Synced != nil {
		return s.Synced(maxError)
	}
	return markSynced(maxError)
}

func call(f, def func(time.Duration) error, off time.Duration) error {
	if f == nil {
		f = def
	}
	return f(off)
}

// Run synchronises now and then at the poll interval until ctx ends. The
// result of the first attempt is sent on first (if not nil), whether it
// worked or not. Failures are logged when they start, not every poll.
func (s *Syncer) Run(ctx context.Context, first chan<- error) {
	poll := MinPoll
	failing := false
	for {
		r, err := s.Once(ctx)
		switch {
		case err != nil:
			poll = MinPoll
		case r.Stepped:
			s.logf("time: clock stepped by %s from %s", r.Offset.Round(time.Millisecond), r.Server)
		default:
			poll = min(2*poll, MaxPoll)
		}
		if first != nil {
			first <- err
			first = nil
		} else if err != nil && !failing {
			s.logf("time: %v; asking again every %s", err, MinPoll)
		}
		failing = err != nil
		if ctxtime.Sleep(ctx, poll) != nil {
			return
		}
	}
}

func (s *Syncer) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// sntp asks one server; name resolution and the exchange together take
// at most timeout.
func sntp(ctx context.Context, server string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	resp, err := ntp.QueryWithOptions(server, ntp.QueryOptions{
		Timeout: time.Until(deadline),
		Dialer: func(_, remote string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", remote)
		},
	})
	if err != nil {
		return 0, err
	}
	if err := resp.Validate(); err != nil {
		return 0, err
	}
	return resp.ClockOffset, nil
}
