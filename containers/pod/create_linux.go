package pod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/atomicfile"
	"github.com/kurmaos/kurma/containers/cgroup"
	"github.com/kurmaos/kurma/containers/metadata"
	"github.com/kurmaos/kurma/containers/stage"
)

// CreateOptions describe a pod to create: a pod manifest, or images to
// run with some changes (the shortcut).
type CreateOptions struct {
	// Name is an optional unique name: lowercase letters, digits and
	// dashes, at most 63.
	Name     string
	Manifest *schema.PodManifest
	// Images and Volumes make a pod manifest when Manifest is nil. Mount
	// points that no mount fills get an empty volume of their name.
	Images  []ImageApp
	Volumes []types.Volume
	// StopOnFailure ends the pod when an app exits with a non-zero status.
	StopOnFailure bool
	// StopGrace is used when the pod stops itself (StopOnFailure, or a
	// SIGTERM to its init); 0 is the manager's default.
	StopGrace time.Duration
	// Isolators are pod-level isolators added to the shortcut's manifest.
	Isolators types.Isolators
	// AllowPrivileged lets the pod, or its apps, use host/privileged and
	// host/api-access; without it a pod asking for either is refused
	// (ErrForbidden). The API sets it from the caller's role: admin only.
	AllowPrivileged bool
	// Restarts counts the pods of this name that ran before this one
	// (its restarts, as Status reports them): the caller replaced an
	// ended pod by this one.
	Restarts int
}

// ErrFailed is wrapped by the error of a pod that could not start; the
// pod stays, in state Failed, until it is removed.
var ErrFailed = errors.New("pod failed")

// Create validates the pod, then makes and starts it. It returns when
// every app has started (state Running) or the pod has failed. A pod
// that fails validation leaves nothing behind (the error wraps
// ErrInvalid); one that fails later is returned with the error, in state
// Failed, and stays until removed.
func (m *Manager) Create(ctx context.Context, opts CreateOptions) (*Pod, error) {
	pm := opts.Manifest
	if pm != nil {
		// The manifest is reified in place: work on a copy.
		data, err := json.Marshal(pm)
		if err != nil {
			return nil, invalid("pod manifest: %v", err)
		}
		if pm, err = ParseManifest(data); err != nil {
			return nil, err
		}
	} else {
		var err error
		if pm, err = fromImages(m.opts.Images, opts.Images, opts.Volumes); err != nil {
			return nil, err
		}
		pm.Isolators = append(pm.Isolators, opts.Isolators...)
	}
	if opts.Name != "" && !namePattern.MatchString(opts.Name) {
		return nil, invalid("name %q: use lowercase letters, digits and dashes (at most 63)", opts.Name)
	}
	pl, err := validate(ctx, m.opts.Images, pm, opts.AllowPrivileged)
	if err != nil {
		return nil, err
	}
	// A spare init comes with its pod's UUID, runtime directory and
	// cgroup already made (see spare_linux.go).
	var in *podInit
	if !pl.hostNetwork && !pl.hostUTS && !pl.iso.hostIPC && !pl.userNS {
		in = m.takeSpare()
	}
	uuid := newUUID()
	if in != nil {
		uuid = in.uuid
	}
	rec := &record{UUID: uuid, Name: opts.Name, State: Preparing, Warnings: pl.warnings, Isolators: pl.iso.statuses, CreatedAt: time.Now().UTC(), Token: metadata.NewToken(), HostNetwork: pl.hostNetwork,
		CPURequest: pl.iso.cpuRequest, MemoryRequest: pl.iso.memRequest, Restarts: opts.Restarts}
	for _, a := range pl.apps {
		rec.Apps = append(rec.Apps, appRecord{Name: a.name, ImageID: a.img.ID, Layers: a.layers})
	}
	p := m.newPod(rec)
	// Registered before the layers are stacked, so the store keeps them.
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.dropSpareLater(in)
		return nil, errors.New("pod manager is closed")
	}
	if opts.Name != "" {
		for _, o := range m.pods {
			if o.name == opts.Name {
				m.mu.Unlock()
				m.dropSpareLater(in)
				return nil, invalid("a pod named %s exists (%s)", opts.Name, o.uuid)
			}
		}
	}
	if err := m.fitsLocked(rec.CPURequest, rec.MemoryRequest); err != nil {
		m.mu.Unlock()
		m.dropSpareLater(in)
		return nil, err
	}
	if pl.userNS {
		var err error
		if rec.UserNS, err = m.ids.take(); err != nil {
			m.mu.Unlock()
			return nil, err
		}
		pl.copyRoots = m.copyRoots
	}
	m.pods[uuid] = p
	m.mu.Unlock()

	grace := opts.StopGrace
	if grace == 0 {
		grace = m.opts.StopGrace
	}
	defer m.refill()
	if err := p.create(ctx, pl, in, opts.StopOnFailure, grace); err != nil {
		return p, err
	}
	return p, nil
}

// create makes the pod's runtime directory, cgroup and init, unless a
// spare init (in) brings them, and runs the start protocol (see package
// stage).
func (p *Pod) create(ctx context.Context, pl *plan, in *podInit, stopOnFailure bool, grace time.Duration) error {
	if in == nil {
		if err := os.Mkdir(p.run, 0o700); err != nil {
			return p.failEarly(err)
		}
		if _, err := p.m.cg.Create(p.uuid); err != nil {
			return p.failEarly(err)
		}
	}
	disk := p.diskLater(ctx, pl, in)
	defer disk.settle()
	cfg, err := p.prepareRun(ctx, pl)
	if err != nil {
		return p.failEarly(p.dropInit(in, err))
	}
	cfg.StopOnFailure, cfg.StopGrace = stopOnFailure, grace
	p.m.md.Register(p.rec.Token, p.metadataPod(pl))
	url := fmt.Sprintf("http://127.0.0.1:%d/%s", stage.MetadataPort, p.rec.Token)
	if pl.hostNetwork {
		addr, err := p.m.hostMetadataAddr()
		if err != nil {
			return p.failEarly(err)
		}
		url = "http://" + addr + "/" + p.rec.Token
	}
	for i := range cfg.Apps {
		cfg.Apps[i].Env = environment(pl.apps[i].name, pl.apps[i].app.Environment, url)
	}
	netns := ""
	if in == nil {
		ns := initOptions{hostNetwork: pl.hostNetwork, hostUTS: pl.hostUTS, hostIPC: pl.iso.hostIPC, idmap: p.rec.UserNS}
		if p.rec.UserNS != nil {
			if ns.pod, err = stage.NewNamespaces(*p.rec.UserNS, !pl.hostNetwork, !pl.hostUTS); err != nil {
				return p.failEarly(fmt.Errorf("user namespace: %w", err))
			}
			defer ns.pod.Close() // the init has its own once it is prepared
			if f := ns.pod.File("net"); f != nil {
				netns = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
			}
			if !pl.copyRoots {
				ns.layers = p.m.opts.Images.Dir()
			}
		}
		if in, err = p.m.spawnInit(ctx, p.uuid, ns); err != nil {
			return p.failEarly(err)
		}
	}
	if p.rec.UserNS != nil {
		p.userNSRoots(cfg, pl, in)
	}
	in.claim(p.m)
	p.mu.Lock()
	p.rec.StagePid, p.rec.StageStart = in.pid, in.start
	p.mu.Unlock()
	conn := in.conn
	err = p.handshake(ctx, conn, cfg, pl, netns, disk)
	if err == nil {
		go func() {
			// "ended" comes before the kernel has torn the pod's
			// namespaces down; EOF means the init went on without fd 3
			// (see package stage): its exit tells then.
			var msg stage.Message
			if _, err := stage.Recv(conn, &msg); err == nil && msg.Type == stage.MsgEnded {
				p.ended(nil)
			}
			conn.Close()
		}()
	} else {
		conn.Close()
	}
	go func() {
		<-in.done
		p.ended(in.err)
	}()
	if err != nil {
		// The init ends on its own when it fails, once it has written its
		// status; make sure of it.
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = p.kill(kctx) // the state below says what happened
			cancel()
		}
		p.mu.Lock()
		msg := p.rec.Error
		p.mu.Unlock()
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%w: %s", ErrFailed, msg)
	}
	return nil
}

// dropInit kills a claimed init that will not run its pod, and returns
// err.
func (p *Pod) dropInit(in *podInit, err error) error {
	if in != nil {
		in.kill()
		_ = os.RemoveAll(in.disk) // gone already if renamed into the pod's, which is removed with it; else DIR/.spares goes at Open
	}
	return err
}

// diskPrep makes the pod's directory on disk (prepareDisk), in the
// background while the init starts for a pod started cold, when asked
// otherwise: a spare brings its part made ahead, and a pod in a user
// namespace needs its init's answer first (copies or not).
type diskPrep struct {
	do   func() error
	errc chan error // background
	done bool
	err  error
}

func (p *Pod) diskLater(ctx context.Context, pl *plan, in *podInit) *diskPrep {
	if in != nil || p.rec.UserNS != nil {
		spare := ""
		if in != nil {
			spare = in.disk
		}
		return &diskPrep{do: func() error { return p.prepareDisk(ctx, pl, spare) }}
	}
	d := &diskPrep{errc: make(chan error, 1)}
	go func() { d.errc <- p.prepareDisk(ctx, pl, "") }()
	return d
}

// wait makes the directory, or waits until it is made, and says how it
// went.
func (d *diskPrep) wait() error {
	if !d.done {
		d.done = true
		if d.errc != nil {
			d.err = <-d.errc
		} else {
			d.err = d.do()
		}
	}
	return d.err
}

// settle waits for the background work, if any: a pod that fails early
// must not have its directory made after its removal.
func (d *diskPrep) settle() {
	if d.errc != nil {
		_ = d.wait() // the pod has failed already, or reported this
	}
}

// failEarly records a failure before the init ran.
func (p *Pod) failEarly(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, statErr := os.Stat(p.run); statErr == nil {
		if serr := p.setState(Failed, err.Error()); serr != nil {
			p.m.opts.Logf("pod %s: %v", p.uuid, serr)
		}
	} else {
		p.rec.State, p.rec.Error = Failed, err.Error()
	}
	close(p.done)
	return fmt.Errorf("%w: %v", ErrFailed, err)
}

// prepareRun sets up the pod's control groups and its apps' mount
// points in the runtime directory, and returns the init's config. The record is written once the init has
// its config (see handshake).
func (p *Pod) prepareRun(ctx context.Context, pl *plan) (*stage.Config, error) {
	names := make([]string, len(pl.apps))
	limits := make([]cgroup.Limits, len(pl.apps))
	for i, a := range pl.apps {
		names[i], limits[i] = a.name, pl.iso.apps[i].limits
	}
	places, applied, err := p.cg.Setup(pl.iso.pod, names, limits)
	if err != nil {
		return nil, err
	}
	// A pod in a user namespace has its apps' v2 groups delegated to its
	// root, and sees them writable: it may make groups below them.
	idmap := p.rec.UserNS
	if idmap != nil {
		for _, pl := range places {
			if pl.V2 == "" {
				continue
			}
			if err := cgroup.Delegate(pl.V2, idmap.Host(0), idmap.Host(0)); err != nil {
				return nil, err
			}
		}
	}
	p.mu.Lock()
	p.rec.Isolators = pl.iso.refuse(applied)
	p.mu.Unlock()
	hostname := "kurma-" + p.uuid[:8]
	if p.name != "" {
		hostname = p.name
	}
	if pl.hostUTS {
		hostname = ""
	}
	cfg := &stage.Config{UUID: p.uuid, Hostname: hostname, Dir: p.dir, RunDir: p.run, HostNetwork: pl.hostNetwork, LogMaxBytes: p.m.opts.LogMaxBytes, Sysctls: pl.iso.sysctls, UserNS: idmap}
	for i, a := range pl.apps {
		if err := os.Mkdir(stage.RootDir(p.run, a.name), 0o755); err != nil {
			return nil, err
		}
		lowers, err := p.m.opts.Images.Lowers(ctx, a.img.ID)
		if err != nil {
			return nil, err
		}
		ai := pl.iso.apps[i]
		ac := stage.AppConfig{
			Name: a.name, Lowers: lowers, ReadOnlyRootFS: a.ro, Exec: a.app.Exec,
			User: a.app.User, Group: a.app.Group, SupplementaryGIDs: a.app.SupplementaryGIDs,
			WorkingDirectory: a.app.WorkingDirectory,
			Isolation:        ai.iso, Privileged: ai.privileged, Interactive: a.interactive, TTY: a.tty,
			Cgroup: stage.AppCgroup{V2: places[i].V2, V1: places[i].V1, OOMEvents: places[i].OOMEvents},
		}
		for _, m := range places[i].Mounts {
			delegated := idmap != nil && m[0] == places[i].V2
			ac.Cgroup.Mounts = append(ac.Cgroup.Mounts, stage.Mount{Source: m[0], Target: m[1], ReadOnly: !delegated})
		}
		if ai.apiAccess {
			if p.m.opts.APISocket == "" {
				return nil, fmt.Errorf("app %s: %s: this daemon has no API socket", a.name, APIAccessIsolator)
			}
			ac.APISocket = p.m.opts.APISocket
		}
		for _, h := range a.app.EventHandlers {
			switch h.Name {
			case "pre-start":
				ac.PreStart = append(ac.PreStart, h.Exec)
			case "post-stop":
				ac.PostStop = append(ac.PostStop, h.Exec)
			}
		}
		for _, m := range a.mounts {
			src := m.volume.Source
			if m.volume.Kind == "empty" {
				src = filepath.Join(p.dir, "volumes", m.volume.Name.String())
			}
			ac.Mounts = append(ac.Mounts, stage.Mount{Source: src, Target: m.target, ReadOnly: m.readOnly, Recursive: m.recursive})
		}
		cfg.Apps = append(cfg.Apps, ac)
	}
	return cfg, nil
}

// prepareDisk makes the pod's directory on disk: the apps' writable
// layers and the empty volumes, and for a pod in a user namespace
// without ID-mapped layers the copies of its images. The init needs them
// only once it starts the apps, so the daemon makes them while the init
// starts or sets itself up. spare is a spare's part, made ahead (see
// spareDisk), renamed into place ("": none). In a user namespace, they
// belong to the namespace's IDs.
func (p *Pod) prepareDisk(ctx context.Context, pl *plan, spare string) error {
	if spare != "" {
		if err := os.Rename(spare, p.dir); err != nil {
			return err
		}
	} else if err := os.Mkdir(p.dir, 0o700); err != nil {
		return err
	}
	idmap := p.rec.UserNS // set before the pod is shared
	for i, a := range pl.apps {
		upper, work := stage.UpperDir(p.dir, a.name), stage.WorkDir(p.dir, a.name)
		if i == 0 && spare != "" {
			if err := os.Rename(filepath.Join(p.dir, "upper"), upper); err != nil {
				return err
			}
			if err := os.Rename(filepath.Join(p.dir, "work"), work); err != nil {
				return err
			}
		} else {
			for _, d := range []string{upper, work} {
				if err := os.Mkdir(d, 0o755); err != nil {
					return err
				}
			}
			// The upper directory is the root of the app's filesystem:
			// its mode and owner are the root's, whatever the umask.
			if err := os.Chmod(upper, 0o755); err != nil {
				return err
			}
		}
		if idmap == nil {
			continue
		}
		if err := os.Lchown(stage.UpperDir(p.dir, a.name), idmap.Host(0), idmap.Host(0)); err != nil {
			return err
		}
		if pl.copyRoots {
			shift := func(id int) int {
				if !idmap.Contains(id) {
					id = overflowID
				}
				return idmap.Host(id)
			}
			if err := p.m.opts.Images.RenderMapped(ctx, a.img.ID, imageCopy(p.dir, a.name), shift); err != nil {
				return err
			}
		}
	}
	if len(pl.emptyVolumes) > 0 {
		if err := os.Mkdir(filepath.Join(p.dir, "volumes"), 0o700); err != nil {
			return err
		}
	}
	for name, v := range pl.emptyVolumes {
		dir := filepath.Join(p.dir, "volumes", name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		uid, gid := 0, 0
		if v.UID != nil {
			uid = *v.UID
		}
		if v.GID != nil {
			gid = *v.GID
		}
		if idmap != nil {
			uid, gid = idmap.Host(uid), idmap.Host(gid) // in the namespace (checked at validation)
		}
		mode, err := volumeMode(v)
		if err != nil {
			return err
		}
		// chown before chmod: chown clears setuid and setgid bits.
		if err := os.Lchown(dir, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(dir, mode); err != nil {
			return err
		}
	}
	return nil
}

// overflowID is the owner, inside a user namespace, of an image's
// files whose owner is outside it: nobody (as the kernel shows IDs it
// cannot map).
const overflowID = 65534

// imageCopy is where a pod in a user namespace without ID-mapped layers
// has the copy of an app's image, owned by the namespace's IDs: the
// lower layer of the app's root.
func imageCopy(dir, app string) string { return filepath.Join(dir, app+".image") }

// userNSRoots sets where the apps of a pod in a user namespace take their
// roots from, now that its init said whether it could mount the image
// store ID-mapped: from there, with the layers the store shares with
// every pod, or else from copies of the images made for the pod and
// owned by its IDs (see prepareDisk). The isolator's status says which.
func (p *Pod) userNSRoots(cfg *stage.Config, pl *plan, in *podInit) {
	how := "the images' layers, ID-mapped"
	store := p.m.opts.Images.Dir()
	if in.idMapped {
		for i := range cfg.Apps {
			for j, l := range cfg.Apps[i].Lowers {
				rel, err := filepath.Rel(store, l)
				if err != nil || !filepath.IsLocal(rel) {
					in.idMapped, in.idMapErr = false, fmt.Sprintf("layer %s is outside the image store", l)
					break
				}
				cfg.Apps[i].Lowers[j] = filepath.Join(stage.LayersDir(p.run), rel)
			}
		}
	}
	if !in.idMapped {
		pl.copyRoots = true
		why := in.idMapErr
		if why == "" {
			why = "not used by this daemon"
		}
		how = "copies of the images owned by the namespace's IDs (ID-mapped layers: " + why + ")"
		for i := range cfg.Apps {
			cfg.Apps[i].Lowers = []string{imageCopy(p.dir, cfg.Apps[i].Name)}
		}
	}
	p.mu.Lock()
	userNSStatus(p.rec.Isolators, p.rec.UserNS, how)
	p.mu.Unlock()
}

// environment is an app's environment (ace.md, Execution Environment):
// PATH and container=kurma, which the app's environment may change, then
// AC_APP_NAME and AC_METADATA_URL, which it may not.
func environment(app string, env types.Environment, url string) []string {
	vars := types.Environment{
		{Name: "PATH", Value: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		{Name: "container", Value: "kurma"},
	}
	for _, e := range env {
		vars.Set(e.Name, e.Value)
	}
	vars.Set("AC_APP_NAME", app)
	vars.Set("AC_METADATA_URL", url)
	out := make([]string, 0, len(vars))
	for _, e := range vars {
		out = append(out, e.Name+"="+e.Value)
	}
	return out
}

// handshake runs the start protocol with the init on conn. netns names
// the network namespace of a pod in a user namespace, for the network
// hook ("": the init's).
func (p *Pod) handshake(ctx context.Context, conn *net.UnixConn, cfg *stage.Config, pl *plan, netns string, disk *diskPrep) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := stage.Send(conn, stage.Message{Type: stage.MsgConfig, Config: cfg}); err != nil {
		return fmt.Errorf("send config to the pod's init: %w", err)
	}
	// While the init sets itself up: the pod's record and manifest (a
	// daemon killed before drops the runtime directory as a spare's:
	// the init gives up when fd 3 closes), and its directory on disk.
	if err := atomicfile.Write(filepath.Join(p.run, "manifest"), pl.manifestBytes, 0o600); err != nil {
		return err
	}
	p.mu.Lock()
	err := p.rec.save(p.run)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if err := disk.wait(); err != nil {
		return err
	}
	// Without a network hook, "start" needs nothing from "namespaces":
	// it goes at once, and the init finds it when it is set up.
	hook := p.m.opts.Network
	if pl.hostNetwork {
		hook = nil
	}
	if hook == nil {
		if err := stage.Send(conn, stage.Message{Type: stage.MsgStart}); err != nil {
			return fmt.Errorf("start the pod's apps: %w", err)
		}
	}
	var msg stage.Message
	files, err := stage.Recv(conn, &msg)
	if err != nil {
		return fmt.Errorf("pod's init: %w", err)
	}
	if msg.Type == stage.MsgFailed {
		return errors.New(msg.Error)
	}
	if msg.Type != stage.MsgNamespaces {
		return fmt.Errorf("pod's init said %q, want %q", msg.Type, stage.MsgNamespaces)
	}
	var listener *os.File
	if !pl.hostNetwork {
		if len(files) != 1 {
			closeFiles(files)
			return fmt.Errorf("pod's init sent %d descriptors, want the metadata listener", len(files))
		}
		listener = files[0]
		defer listener.Close()
	}
	if hook != nil {
		if netns == "" {
			netns = fmt.Sprintf("/proc/%d/ns/net", p.rec.StagePid)
		}
		if err := hook.Setup(ctx, NetNS{PodUUID: p.uuid, Path: netns}); err != nil {
			return fmt.Errorf("network: %w", err)
		}
		if err := stage.Send(conn, stage.Message{Type: stage.MsgStart}); err != nil {
			return fmt.Errorf("start the pod's apps: %w", err)
		}
	}
	if listener != nil {
		// Served while the apps start: the socket listens already, so an
		// app's first request waits in its backlog at worst.
		l, err := net.FileListener(listener)
		if err != nil {
			return err
		}
		p.m.md.Serve(l, p.rec.Token)
	}
	if _, err := stage.Recv(conn, &msg); err != nil {
		return fmt.Errorf("pod's init: %w", err)
	}
	if msg.Type != stage.MsgRunning {
		return errors.New(msg.Error)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.setState(Running, "")
}

// metadataPod is what the metadata service serves for the pod.
func (p *Pod) metadataPod(pl *plan) *metadata.Pod {
	mp := &metadata.Pod{UUID: p.uuid, Manifest: pl.manifestBytes, Annotations: pl.manifest.Annotations, Apps: map[string]metadata.App{}}
	for _, a := range pl.apps {
		im, err := json.Marshal(a.img.Manifest)
		if err != nil {
			im = nil
		}
		mp.Apps[a.name] = metadata.App{ImageID: a.img.ID, ImageManifest: im, Annotations: a.annots}
	}
	return mp
}
