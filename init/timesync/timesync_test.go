package timesync

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
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
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 {
				continue
			}
			now := time.Now().Add(ahead)
			resp := make([]byte, 48)
			resp[0] = 4<<3 | 4 // version 4, server
			resp[1] = 2        // stratum
			copy(resp[12:16], "TEST")
			putTime(resp[16:], now.Add(-time.Minute)) // reference
			copy(resp[24:32], buf[40:48])             // origin: the client's transmit time
			putTime(resp[32:], now)                   // receive
			putTime(resp[40:], now)                   // transmit
			_, _ = pc.WriteTo(resp, addr)             // the client retries or times out
		}
	}()
	return pc.LocalAddr().String()
}

func putTime(b []byte, t time.Time) {
	const epoch = 2208988800 // 1900 to 1970
	secs := uint64(t.Unix() + epoch)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	binary.BigEndian.PutUint64(b, secs<<32|frac)
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
			s := &Syncer{
				Servers: tt.servers,
				Timeout: 300 * time.Millisecond,
				Step:    func(off time.Duration) error { stepped = off; return nil },
				Slew:    func(off time.Duration) error { slewed = off; return nil },
			}
			r, err := s.Once(context.Background())
			if tt.wantErrs != nil {
				for _, w := range tt.wantErrs {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v, want one with %q", err, w)
					}
				}
				if stepped != 0 || slewed != 0 {
					t.Errorf("the clock was corrected without an answer")
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
