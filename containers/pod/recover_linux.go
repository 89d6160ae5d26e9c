package pod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kurmaos/kurma/containers/stage"
)

// recover loads the pods, as a restarted daemon does: those of the
// runtime directory are followed again; those found only on disk ran
// before the machine restarted and are recorded as failed.
func (m *Manager) recover(ctx context.Context) error {
	known := map[string]bool{}
	ents, err := os.ReadDir(m.opts.RunDir)
	if err != nil {
		return fmt.Errorf("pod manager: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		run := filepath.Join(m.opts.RunDir, e.Name())
		if strings.HasPrefix(e.Name(), ".removing-") {
			m.opts.Logf("pod manager: finishing the removal of %s", e.Name())
			if err := os.RemoveAll(run); err != nil {
				return fmt.Errorf("pod manager: %w", err)
			}
			continue
		}
		known[e.Name()] = true
		rec, err := loadRecord(run)
		if err != nil || rec.UUID != e.Name() {
			// A pod whose creation was cut before its first record, or a
			// spare init of a previous daemon: it never ran an app.
			// Kill what may be left and drop it.
			m.opts.Logf("pod manager: dropping pod %s, which never started: %v", e.Name(), err)
			g := m.cg.Group(e.Name())
			if err := g.Kill(ctx); err != nil {
				return err
			}
			if err := g.Remove(ctx); err != nil {
				return err
			}
			for _, d := range []string{run, m.podDir(e.Name())} {
				if err := os.RemoveAll(d); err != nil {
					return fmt.Errorf("pod manager: %w", err)
				}
			}
			continue
		}
		p := m.newPod(rec)
		m.pods[p.uuid] = p
		m.ids.hold(rec.UserNS)
		if err := p.adopt(ctx); err != nil {
			m.opts.Logf("pod manager: pod %s: %v", p.uuid, err)
		}
	}
	// The disk parts of a previous daemon's spares, which are gone (see
	// spareDisk).
	if err := os.RemoveAll(filepath.Join(m.opts.Dir, ".spares")); err != nil {
		return fmt.Errorf("pod manager: %w", err)
	}
	ents, err = os.ReadDir(m.opts.Dir)
	if err != nil {
		return fmt.Errorf("pod manager: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		if strings.HasPrefix(e.Name(), ".removing-") {
			if err := os.RemoveAll(filepath.Join(m.opts.Dir, e.Name())); err != nil {
				return fmt.Errorf("pod manager: %w", err)
			}
			continue
		}
		if err := m.orphan(e.Name()); err != nil {
			m.opts.Logf("pod manager: pod %s: %v", e.Name(), err)
		}
	}
	return nil
}

// orphan records a pod found on disk without runtime state: it ran when
// the machine went down. Its apps are those with a writable layer; its
// logs and volumes stay until it is removed.
func (m *Manager) orphan(uuid string) error {
	info, err := os.Stat(m.podDir(uuid))
	if err != nil {
		return err
	}
	rec := &record{UUID: uuid, State: Failed, Error: "the machine restarted while the pod existed", CreatedAt: info.ModTime().UTC(), EndedAt: info.ModTime().UTC()}
	uppers, _ := filepath.Glob(filepath.Join(m.podDir(uuid), "*.upper"))
	for _, u := range uppers {
		rec.Apps = append(rec.Apps, appRecord{Name: strings.TrimSuffix(filepath.Base(u), ".upper")})
		// The root of a pod in a user namespace belongs to the first ID
		// of its range, which its files keep until it is removed.
		var st unix.Stat_t
		if unix.Lstat(u, &st) == nil && rec.UserNS == nil {
			if i := m.ids.index(st.Uid); i >= 0 {
				rec.UserNS = &stage.IDMap{HostID: m.opts.UserNamespaces.FirstID + uint32(i)*UserNSSize, Size: UserNSSize}
				m.ids.hold(rec.UserNS)
			}
		}
	}
	p := m.newPod(rec)
	if err := os.MkdirAll(p.run, 0o700); err != nil {
		return err
	}
	if err := rec.save(p.run); err != nil {
		return err
	}
	close(p.done)
	m.pods[uuid] = p
	return nil
}

func (m *Manager) newPod(rec *record) *Pod {
	return &Pod{m: m, uuid: rec.UUID, name: rec.Name, dir: m.podDir(rec.UUID), run: m.runDir(rec.UUID), createdAt: rec.CreatedAt, cg: m.cg.Group(rec.UUID), rec: rec, done: make(chan struct{})}
}

// adopt takes over a pod found on disk.
func (p *Pod) adopt(ctx context.Context) error {
	switch p.rec.State {
	case Exited, Stopped, Failed:
		close(p.done)
		return nil
	case Removing:
		close(p.done)
		return p.remove(ctx)
	}
	pidfd, err := p.openInit()
	if err != nil {
		// The init ended while no daemon was watching.
		if p.rec.State == Preparing {
			// Its creation was cut: nothing may run in it.
			if kerr := p.cg.Kill(ctx); kerr != nil {
				return kerr
			}
		}
		p.ended(err)
		return nil
	}
	if p.rec.State == Preparing {
		// The daemon died in the middle of the start protocol: the init
		// gives up when its fd 3 closes. Make sure of it.
		if err := p.cg.Kill(ctx); err != nil {
			unix.Close(pidfd)
			return err
		}
	} else if err := p.reattach(ctx); err != nil {
		p.m.opts.Logf("pod %s: %v", p.uuid, err)
	}
	go func() {
		// pidfds become readable when the process exits, also for a
		// process that is not our child.
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err != unix.EINTR {
				break
			}
		}
		unix.Close(pidfd)
		p.ended(errors.New("the init exited while the daemon was restarting or after"))
	}()
	return nil
}

// openInit opens a pidfd of the pod's init, if it is still the process
// recorded (same PID, same start time).
func (p *Pod) openInit() (int, error) {
	if p.rec.StagePid <= 0 {
		return -1, errors.New("no init recorded")
	}
	pidfd, err := unix.PidfdOpen(p.rec.StagePid, 0)
	if err != nil {
		return -1, fmt.Errorf("init %d: %w", p.rec.StagePid, err)
	}
	// Checked after opening: the pidfd pins the process, so a start
	// time that matches now matches for good.
	start, err := startTime(p.rec.StagePid)
	if err != nil || start != p.rec.StageStart {
		unix.Close(pidfd)
		return -1, fmt.Errorf("init %d is gone (its PID was reused)", p.rec.StagePid)
	}
	return pidfd, nil
}

// reattach serves the metadata of a running pod again, on the listener
// its init keeps.
func (p *Pod) reattach(ctx context.Context) error {
	pl, err := p.replan(ctx)
	if err != nil {
		return err
	}
	p.m.md.Register(p.rec.Token, p.metadataPod(pl))
	if p.rec.HostNetwork {
		_, err := p.m.hostMetadataAddr()
		return err
	}
	c, err := p.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := stage.Send(c, stage.Request{Op: stage.OpListener}); err != nil {
		return err
	}
	var rep stage.Reply
	files, err := stage.Recv(c, &rep)
	if err != nil {
		return err
	}
	if rep.Error != "" || len(files) != 1 {
		for _, f := range files {
			f.Close()
		}
		return fmt.Errorf("metadata listener: %s", rep.Error)
	}
	l, err := net.FileListener(files[0])
	files[0].Close()
	if err != nil {
		return err
	}
	p.m.md.Serve(l, p.rec.Token)
	return nil
}

// replan rebuilds what the metadata service needs from the pod's
// reified manifest.
func (p *Pod) replan(ctx context.Context) (*plan, error) {
	data, err := os.ReadFile(filepath.Join(p.run, "manifest"))
	if err != nil {
		return nil, err
	}
	pm, err := ParseManifest(data)
	if err != nil {
		return nil, err
	}
	pl := &plan{manifest: pm, manifestBytes: data}
	for _, ra := range pm.Apps {
		img, err := p.m.opts.Images.Get(ra.Image.ID.String())
		if err != nil {
			return nil, err
		}
		pl.apps = append(pl.apps, appPlan{name: ra.Name.String(), img: img, annots: appAnnotations(img, ra)})
	}
	return pl, nil
}
