package boot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/kurmaos/kurma/config"
	"github.com/kurmaos/kurma/config/volume"
)

// oemLabel is the filesystem label of the OEM disk: a vfat or ISO9660
// volume whose config.yaml is the configuration layer between the
// initrd's file and the kernel command line.
const oemLabel = "KURMA_OEM"

// config reads the local layers: the embedded defaults, the initrd's
// /etc/kurma/config.yaml and the kernel command line. The disks and the
// network datasources come later, when their drivers and the network are
// up.
func (m *Machine) config(context.Context) error {
	m.release = readRelease("/etc/kurma/release")
	m.cfgLoader = config.NewLoader(config.Sources{InitrdFile: config.InitrdPath, Cmdline: m.cmdline})
	return m.applyConfig()
}

// localDatasources reads the OEM disk and runs the datasources that need
// no network (NoCloud, config drive), now that storage drivers are loaded.
func (m *Machine) localDatasources(ctx context.Context) error {
	oem, oemErrs := m.readOEM()
	if oem != nil {
		// The OEM layer goes under the command line: start the loader
		// again with it (no datasource has run yet).
		m.cfgLoader = config.NewLoader(config.Sources{InitrdFile: config.InitrdPath, OEM: oem, Cmdline: m.cmdline})
	}
	for _, r := range m.cfgLoader.RunDatasources(ctx, func(d *config.Datasource) bool { return !d.NeedsNetwork() }) {
		m.log.Infof("config: %s", r)
	}
	return m.applyConfig(oemErrs...)
}

// readOEM returns the OEM disk's layer and its errors; no layer when there
// is no OEM disk.
func (m *Machine) readOEM() (*config.Layer, []error) {
	dev, err := volume.Finder{}.Find(oemLabel)
	if err != nil || dev == "" {
		return nil, nil
	}
	fsys, closeFS, err := volume.OpenPath(dev)
	if err != nil {
		return nil, []error{fmt.Errorf("config: OEM disk %s: %w", dev, err)}
	}
	defer closeFS()
	f, err := fsys.Open("config.yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("config: OEM disk %s: %w", dev, err)}
	}
	defer f.Close()
	layer, errs := config.Read(config.LayerOEM, dev+":config.yaml", f)
	m.log.Infof("config: OEM disk %s read", dev)
	return layer, errs
}

// applyConfig merges the layers read so far, shows the errors not shown
// yet (with more, found outside the loader), and takes what the boot
// itself needs (debug, the shutdown action). It returns an error when the
// configuration had errors, so the phase shows as failed in the timeline;
// the boot goes on with the valid part.
func (m *Machine) applyConfig(more ...error) error {
	eff, errs := m.cfgLoader.Effective()
	errs = append(more, errs...)
	m.eff, m.cfg = eff, &eff.Config
	m.log.SetDebug(m.cfg.Debug)
	if a, err := ParseAction(m.cfg.Shutdown); err == nil {
		m.onSignal = a
	}
	for _, e := range errs {
		m.showConfigError(e)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d errors in the configuration (the valid settings apply)", len(errs))
	}
	return nil
}

func (m *Machine) showConfigError(e error) {
	msg := e.Error()
	if m.cfgShown[msg] {
		return
	}
	m.cfgShown[msg] = true
	m.log.Errorf("%s", msg)
}
