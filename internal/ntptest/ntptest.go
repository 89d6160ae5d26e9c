// Package ntptest answers SNTP queries for tests, with a clock offset
// from this machine's.
package ntptest

import (
	"encoding/binary"
	"net"
	"time"
)

// Serve answers the SNTP queries that reach pc, with a clock ahead of
// this machine's by ahead (behind when negative), until pc is closed.
func Serve(pc net.PacketConn, ahead time.Duration) {
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
}

func putTime(b []byte, t time.Time) {
	const epoch = 2208988800 // 1900 to 1970
	secs := uint64(t.Unix() + epoch)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	binary.BigEndian.PutUint64(b, secs<<32|frac)
}
