// Package uevent reads the kernel's device events (uevents) from its
// netlink socket: a device was added, removed, bound to a driver.
package uevent

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Event is one uevent.
type Event struct {
	Action    string // add, remove, change, bind, unbind, move, online, offline
	DevPath   string // under /sys
	Subsystem string
	Modalias  string // the device's module alias, when it has one
	Seqnum    uint64
	Env       map[string]string
}

// Parse reads a kernel uevent message: a header "ACTION@DEVPATH" and
// KEY=VALUE fields, each ended by a NUL byte.
func Parse(msg []byte) (Event, error) {
	fields := bytes.Split(bytes.TrimRight(msg, "\x00"), []byte{0})
	if len(fields) == 0 || !bytes.Contains(fields[0], []byte("@")) {
		return Event{}, fmt.Errorf("uevent: no ACTION@DEVPATH header in %q", truncate(msg))
	}
	if bytes.HasPrefix(fields[0], []byte("libudev")) {
		return Event{}, fmt.Errorf("uevent: a libudev message, not the kernel's")
	}
	e := Event{Env: map[string]string{}}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok {
			continue
		}
		e.Env[k] = v
	}
	e.Action, e.DevPath, e.Subsystem, e.Modalias = e.Env["ACTION"], e.Env["DEVPATH"], e.Env["SUBSYSTEM"], e.Env["MODALIAS"]
	if e.Action == "" || e.DevPath == "" {
		return Event{}, fmt.Errorf("uevent: no ACTION or DEVPATH in %q", truncate(msg))
	}
	if s := e.Env["SEQNUM"]; s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Event{}, fmt.Errorf("uevent: SEQNUM %q: %w", s, err)
		}
		e.Seqnum = n
	}
	return e, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
