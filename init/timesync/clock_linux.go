package timesync

import (
	"time"

	"golang.org/x/sys/unix"
)

// stepClock sets CLOCK_REALTIME forward by off.
func stepClock(off time.Duration) error {
	tv := unix.NsecToTimeval(time.Now().Add(off).UnixNano())
	return unix.Settimeofday(&tv)
}

// adjOffsetSingleshot is adjtime(3)'s mode of adjtimex(2): slew by an
// offset in microseconds, at most 0.5 s.
const adjOffsetSingleshot = 0x8001

// slewClock has the kernel make up off gradually (about 0.5 ms a second).
func slewClock(off time.Duration) error {
	tx := unix.Timex{Modes: adjOffsetSingleshot, Offset: off.Microseconds()}
	_, err := unix.Adjtimex(&tx)
	return err
}
