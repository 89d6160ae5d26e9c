package uevent

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Listener receives the kernel's uevents.
type Listener struct {
	f   *os.File
	buf []byte
}

// Listen opens a netlink socket subscribed to the kernel's uevents.
func Listen() (*Listener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	// A burst of events at cold plug must not overflow the socket.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) // without CAP_NET_ADMIN the default stays
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("uevent bind: %w", err)
	}
	return &Listener{f: os.NewFile(uintptr(fd), "uevent"), buf: make([]byte, 64<<10)}, nil
}

// Next waits for the next kernel event; messages that are not the
// kernel's (libudev's) or that do not parse are skipped.
func (l *Listener) Next() (Event, error) {
	for {
		n, err := l.f.Read(l.buf)
		if err != nil {
			return Event{}, err
		}
		if e, err := Parse(l.buf[:n]); err == nil {
			return e, nil
		}
	}
}

// Close stops the listener; a Next waiting returns an error.
func (l *Listener) Close() error { return l.f.Close() }
