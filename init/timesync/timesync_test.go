package timesync

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kurmaos/kurma/internal/ntptest"
)

// ntpServer answers SNTP queries on loopback with a clock that is ahead
// of this machine's by ahead.
func ntpServer(t *testing.T, ahead time.Duration) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go ntptest.Serve(pc, ahead)
	return pc.LocalAddr().String()
}

func TestOnce(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tests := []struct {
		name     string
		servers  []string
		stepped  bool
		slewed   bool
		offset   time.Duration
		wantErrs []string
	}{
		{"ten seconds behind: stepped", []string{ntpServer(t, 10*time.Second)}, true, false, 10 * time.Second, nil},
		{"close: slewed", []string{ntpServer(t, 100*time.Millisecond)}, false, true, 100 * time.Millisecond, nil},
		{"first server silent, second answers", []string{silent.LocalAddr().String(), ntpServer(t, -time.Hour)}, true, false, -time.Hour, nil},
		{"no server answers", []string{silent.LocalAddr().String(), "name.invalid"}, false, false, 0,
			[]string{silent.LocalAddr().String() + ": ", "name.invalid: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stepped, slewed time.Duration
			var synced []time.Duration
			s := &Syncer{
				Servers: tt.servers,
				Timeout: 300 * time.Millisecond,
				Step:    func(off time.Duration) error { stepped = off; return nil },
				Slew:    func(off time.Duration) error { slewed = off; return nil },
				Synced:  func(maxError time.Duration) error { synced = append(synced, maxError); return nil },
			}
			r, err := s.Once(context.Background())
			if tt.wantErrs != nil {
				for _, w := range tt.wantErrs {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v, want one with %q", err, w)
					}
				}
				if stepped != 0 || slewed != 0 || len(synced) != 0 {
					t.Errorf("the clock was corrected (or marked synchronised: %v) without an answer", synced)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := stepped
			if tt.slewed {
				got = slewed
			}
			if (stepped != 0) != tt.stepped || (slewed != 0) != tt.slewed || r.Stepped != tt.stepped {
				t.Errorf("stepped %s, slewed %s, result %+v", stepped, slewed, r)
			}
			if d := got - tt.offset; d > 50*time.Millisecond || d < -50*time.Millisecond {
				t.Errorf("offset %s, want about %s", got, tt.offset)
			}
			// The kernel is told the clock is synchronised, with an error
			// of the query's timeout, plus the offset left to slew.
			want := 300 * time.Millisecond
			if tt.slewed {
				want += tt.offset
			}
			if len(synced) != 1 || synced[0]-want > 50*time.Millisecond || want-synced[0] > 50*time.Millisecond {
				t.Errorf("marked synchronised with %v, want once with about %s", synced, want)
			}
		})
	}
}

func TestRunReportsTheFirstAttempt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	s := &Syncer{Servers: []string{"a"}, Query: func(context.Context, string, time.Duration) (time.Duration, error) {
		return 0, errors.New("unreachable")
	}}
	go s.Run(ctx, first)
	select {
	case err := <-first:
		if err == nil || !strings.Contains(err.Error(), "a: unreachable") {
			t.Errorf("first attempt: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no report of the first attempt")
	}
}

// Servers learned from DHCP are asked first, then the configured ones,
// none twice; with neither, the error says so.
func TestLearnedServersFirst(t *testing.T) {
	var asked []string
	learned := []string{"192.168.7.123", "b"}
	s := &Syncer{
		Servers: []string{"a", "b"},
		Learned: func() []string { return learned },
		Query: func(_ context.Context, srv string, _ time.Duration) (time.Duration, error) {
			asked = append(asked, srv)
			return 0, errors.New("unreachable")
		},
	}
	if _, err := s.Once(context.Background()); err == nil {
		t.Fatal("no error with every server unreachable")
	}
	if got := strings.Join(asked, " "); got != "192.168.7.123 b a" {
		t.Errorf("asked %q, want the learned servers first and b once", got)
	}
	s.Servers, learned = nil, nil
	if _, err := s.Once(context.Background()); err == nil || !strings.Contains(err.Error(), "none from DHCP") {
		t.Errorf("no servers at all: %v", err)
	}
}
