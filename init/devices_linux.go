package boot

import (
	"strings"

	"github.com/kurmaos/kurma/init/uevent"
	kmod "github.com/kurmaos/kurma/kernel-modules"
)

// The device manager. devtmpfs makes the device nodes; what is left is to
// load the driver of each device that appears, by its modalias, from the
// modules the image ships: cold plug finds the devices there at boot, and
// this finds those that come later (hot plug, or behind a bus driver that
// probes asynchronously, like disks behind AHCI). It starts before cold
// plug, so no device falls between the two.

// startDevices listens for device events for the life of the machine.
// It acts on them only once coldplugged is closed: a driver loaded while
// cold plug's bus drivers still add devices would bind them out of order
// (a virtio_blk loaded in the middle of virtio_pci's probing names the
// disks vda, vdb… in a different order at each boot). The events of that
// time wait in the socket's buffer; by then cold plug has loaded their
// drivers, and they are skipped.
func (m *Machine) startDevices(ix *kmod.Index, loader *kmod.Loader, coldplugged <-chan struct{}) {
	l, err := uevent.Listen()
	if err != nil {
		m.log.Warnf("devices: no hot plug: %v", err)
		return
	}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				m.log.Errorf("devices: stopped: %v", r) // PID 1 goes on without hot plug
			}
		}()
		<-coldplugged
		for {
			e, err := l.Next()
			if err != nil {
				m.log.Warnf("devices: stopped: %v", err)
				return
			}
			if e.Action != "add" || e.Modalias == "" {
				continue
			}
			m.deviceAdded(ix, loader, e)
		}
	}()
}

func (m *Machine) deviceAdded(ix *kmod.Index, loader *kmod.Loader, e uevent.Event) {
	mods, err := ix.Lookup(e.Modalias)
	if err != nil {
		return // no shipped module drives it
	}
	var todo []string
	for _, mod := range mods {
		if !loader.Tried(mod) {
			todo = append(todo, mod)
		}
	}
	if len(todo) == 0 {
		return
	}
	var loaded, failed []string
	for _, r := range loader.LoadAll(todo) {
		switch {
		case r.Err == nil && !r.Already:
			loaded = append(loaded, r.Module)
		case r.Err != nil && !r.Alternative:
			failed = append(failed, r.Err.Error())
		}
	}
	logf := m.log.Debugf
	if m.isReady.Load() {
		logf = m.log.Infof // after the boot, a device that comes is news
	}
	if len(loaded) > 0 {
		logf("devices: %s (%s): loaded %s", e.DevPath, e.Modalias, strings.Join(loaded, ", "))
	}
	for _, f := range failed {
		m.log.Warnf("devices: %s: %s", e.DevPath, f)
	}
}
