package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kurmaos/kurma/containers/cgroup"
	"github.com/kurmaos/kurma/containers/stage"
)

// Pod is one pod. Its methods are safe for concurrent use.
type Pod struct {
	m         *Manager
	uuid      string
	name      string
	dir       string // on disk
	run       string // runtime directory
	createdAt time.Time
	cg        *cgroup.Group

	mu   sync.Mutex // guards rec and the channels
	rec  *record
	done chan struct{} // closed when the pod has ended (its init is gone)
}

// Status is what a pod is doing.
type Status struct {
	UUID     string
	Name     string
	State    State
	Error    string
	Warnings []string
	// Isolators says what became of each isolator of the pod and its
	// apps: enforced, refused or ignored.
	Isolators []IsolatorStatus
	// CPURequest (millicores) and MemoryRequest (bytes) are what the pod
	// holds of the machine's allocatable resources while it runs.
	CPURequest, MemoryRequest int64
	CreatedAt                 time.Time
	StartedAt                 time.Time
	EndedAt                   time.Time
	// Pid is the host PID of the pod's init while it runs.
	Pid int
	// Restarts is CreateOptions.Restarts: how many pods of this name ran
	// before this one.
	Restarts int
	Apps     []AppStatus
}

// AppStatus is one app's part of a Status.
type AppStatus struct {
	Name    string
	ImageID string
	// State is "pending", "running" or "exited".
	State     string
	Pid       int // in the pod's PID namespace
	StartedAt time.Time
	ExitedAt  time.Time
	// Exit is set once the app has exited.
	Exit *stage.ExitStatus
	// OOMKilled says the kernel killed the app for want of memory (its
	// limit or the pod's).
	OOMKilled bool
	Error     string
}

// UUID is the pod's UUID.
func (p *Pod) UUID() string { return p.uuid }

// Name is the pod's name ("" if it has none).
func (p *Pod) Name() string { return p.name }

// Dir is the pod's directory on disk (writable layers, volumes, logs).
func (p *Pod) Dir() string { return p.dir }

// RunDir is the pod's runtime directory (state, control socket).
func (p *Pod) RunDir() string { return p.run }

// Cgroup is the pod's control group.
func (p *Pod) Cgroup() *cgroup.Group { return p.cg }

// LogPath is the log file of an app (the previous part is LogPath+".1").
func (p *Pod) LogPath(app string) string { return stage.LogPath(p.dir, app) }

// Status reports the pod's state and its apps'.
func (p *Pod) Status() Status {
	p.mu.Lock()
	r := *p.rec
	p.mu.Unlock()
	st := Status{UUID: r.UUID, Name: r.Name, State: r.State, Error: r.Error, Warnings: r.Warnings, Isolators: r.Isolators,
		CPURequest: r.CPURequest, MemoryRequest: r.MemoryRequest, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, EndedAt: r.EndedAt, Restarts: r.Restarts}
	if !r.State.Ended() && r.State != Preparing {
		st.Pid = r.StagePid
	}
	var ss *stage.Status
	if r.State != Removed {
		ss, _ = stage.ReadStatus(p.run) // missing before the init writes it
	}
	for _, a := range r.Apps {
		as := AppStatus{Name: a.Name, ImageID: a.ImageID, State: stage.AppPending}
		if ss != nil {
			for _, s := range ss.Apps {
				if s.Name == a.Name {
					as.State, as.Pid, as.StartedAt, as.ExitedAt, as.Exit, as.OOMKilled, as.Error = s.State, s.Pid, s.StartedAt, s.ExitedAt, s.Exit, s.OOMKilled, s.Error
				}
			}
		}
		st.Apps = append(st.Apps, as)
	}
	return st
}

// Wait waits until the pod has ended (exited, stopped or failed).
func (p *Pod) Wait(ctx context.Context) (Status, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return p.Status(), nil
	case <-ctx.Done():
		return p.Status(), ctx.Err()
	}
}

// setState moves the pod to state to, with an error message, and saves
// the record. The caller holds p.mu.
func (p *Pod) setState(to State, msg string) error {
	if err := transition(p.rec.State, to); err != nil {
		return err
	}
	p.rec.State = to
	if msg != "" && p.rec.Error == "" {
		p.rec.Error = msg
	}
	switch to {
	case Running:
		p.rec.StartedAt = time.Now().UTC()
	case Exited, Stopped, Failed:
		p.rec.EndedAt = time.Now().UTC()
	}
	if to == Removed {
		return nil
	}
	return p.rec.save(p.run)
}

// ended records how the pod ended, from the init's status.json, once its
// init is gone.
func (p *Pod) ended(initErr error) {
	p.m.mu.Lock()
	closed := p.m.closed
	p.m.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rec.State.Ended() {
		return
	}
	if closed {
		// A closed manager's pods are the next manager's, records
		// included.
		select {
		case <-p.done:
		default:
			close(p.done)
		}
		return
	}
	to, msg := Failed, ""
	ss, err := stage.ReadStatus(p.run)
	switch {
	case err != nil:
		msg = fmt.Sprintf("the pod's init ended without a status: %v", initErr)
	case ss.Phase == stage.PhaseExited:
		to = Exited
	case ss.Phase == stage.PhaseStopped:
		to = Stopped
	case ss.Phase == stage.PhaseFailed:
		msg = ss.Error
	default:
		msg = fmt.Sprintf("the pod's init died while the pod was %s (%v)", ss.Phase, initErr)
	}
	if p.rec.State == Preparing && to != Failed {
		// The init got as far as running the apps, which then ended
		// before the daemon saw them running.
		if err := p.setState(Running, ""); err != nil {
			p.m.opts.Logf("pod %s: %v", p.uuid, err)
		}
	}
	if err := p.setState(to, msg); err != nil {
		p.m.opts.Logf("pod %s: %v", p.uuid, err)
	}
	close(p.done)
	// After done: closing its listener is no part of the pod ending.
	go p.m.md.Unregister(p.rec.Token)
}

func (p *Pod) layers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, a := range p.rec.Apps {
		ids = append(ids, a.Layers...)
	}
	return ids
}

// removeFiles removes the pod's directories.
func (p *Pod) removeFiles() error {
	// Rename first, so a crash never leaves a half-removed pod that looks
	// like a pod; the runtime directory goes last, with the record.
	for _, dir := range []string{p.dir, p.run} {
		trash := filepath.Join(filepath.Dir(dir), ".removing-"+p.uuid)
		if err := os.Rename(dir, trash); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove pod %s: %w", p.uuid, err)
		}
		if err := os.RemoveAll(trash); err != nil {
			return fmt.Errorf("remove pod %s: %w", p.uuid, err)
		}
	}
	return nil
}
