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

// markSynced clears the kernel's "unsynchronised" status and sets its
// estimate of the clock's error, as NTP daemons do. While the status says
// synchronised, the kernel writes the system time to the RTC every 11
// minutes (CONFIG_RTC_SYSTOHC); the error it assumes grows by 0.5 ms a
// second, and past 16 s it marks the clock unsynchronised again, long
// after the next poll (1024 s at most).
func markSynced(maxError time.Duration) error {
	var tx unix.Timex
	if _, err := unix.Adjtimex(&tx); err != nil { // Modes 0: read
		return err
	}
	us := max(maxError.Microseconds(), 1)
	tx = unix.Timex{
		Modes:    unix.ADJ_STATUS | unix.ADJ_MAXERROR | unix.ADJ_ESTERROR,
		Status:   tx.Status &^ unix.STA_UNSYNC,
		Maxerror: us,
		Esterror: us,
	}
	_, err := unix.Adjtimex(&tx)
	return err
}
