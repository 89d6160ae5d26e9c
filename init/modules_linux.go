package boot

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	kmod "github.com/kurmaos/kurma/kernel-modules"
)

const maxColdplugRounds = 4

// modules loads the environment profile's modules: its load list, then
// the drivers of its match list that claim a device present now.
func (m *Machine) modules(context.Context) error {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return err
	}
	tree := filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]))
	name := m.cfg.Modules.Profile
	if name == "" {
		name = m.release["KURMA_PROFILE"]
	}
	if name == "" {
		return fmt.Errorf("no module profile: the image records none and modules.profile is not set")
	}
	profile, err := kmod.LoadProfile(name)
	if err != nil {
		return err
	}
	start := time.Now()
	ix, err := kmod.OpenIndex(tree)
	if err != nil {
		return fmt.Errorf("module index: %w", err)
	}
	loader, err := kmod.NewLoader(ix, "/proc/modules")
	if err != nil {
		return err
	}
	for mod, params := range m.cfg.Modules.Parameters {
		loader.Params[kmod.ModuleName(mod)] = joinParams(params)
	}
	m.modLoader = loader
	coldplugged := make(chan struct{})
	defer close(coldplugged)
	if m.cfg.Services.Devices.Enabled {
		m.startDevices(ix, loader, coldplugged)
	}
	// The load list and cold plug run side by side: a driver's probe
	// often sleeps on its hardware.
	loadList := make(chan []kmod.Result, 1)
	go func() {
		loadList <- loader.LoadAll(append(append([]string{}, profile.Load...), m.cfg.Modules.Extra...))
	}()
	var results []kmod.Result
	// Cold plug: drivers for the devices there now. A bus driver brings
	// the devices behind it (virtio_pci the virtio devices), so look
	// again until nothing new matches.
	for round := 0; round < maxColdplugRounds; round++ {
		var todo []string
		for _, mod := range ix.Matching(kmod.DeviceAliases("/sys"), profile.Match) {
			if !loader.Tried(mod) {
				todo = append(todo, mod)
			}
		}
		if len(todo) == 0 {
			break
		}
		results = append(results, loader.LoadAll(todo)...)
	}
	results = append(results, <-loadList...)
	var loaded int
	var failed []string
	for _, r := range results {
		switch {
		case r.Err == nil && !r.Already:
			loaded++
			m.log.Debugf("modules: %s in %s", r.Module, r.Took)
		case r.Err != nil && r.Alternative:
			m.log.Debugf("modules: %v (another provider loaded)", r.Err)
		case r.Err != nil:
			m.log.Warnf("modules: %v", r.Err)
			failed = append(failed, r.Module)
		}
	}
	m.log.Infof("modules: %d loaded in %s (profile %s)", loaded, ms(time.Since(start)), name)
	if len(failed) > 0 {
		return fmt.Errorf("%d modules failed to load: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// modprobe loads a module or alias after the modules phase, such as a
// filesystem (fs-iso9660) before mounting it. Failures are the caller's
// to report.
func (m *Machine) modprobe(nameOrAlias string) error {
	if m.modLoader == nil {
		return fmt.Errorf("load %s: no module index (the modules phase failed)", nameOrAlias)
	}
	for _, r := range m.modLoader.Load(nameOrAlias) {
		if r.Err != nil && !r.Alternative {
			return r.Err
		}
	}
	return nil
}

// joinParams renders module parameters as finit_module takes them:
// "a=1 b=x", sorted.
func joinParams(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + params[k]
	}
	return strings.Join(parts, " ")
}
