package pod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/image"
)

// ErrInvalid is wrapped by every error about a pod manifest or the
// options of a pod: nothing was created.
var ErrInvalid = errors.New("invalid pod")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ImageApp is an app of the "run these images" shortcut: an image and
// what to change in its app.
type ImageApp struct {
	// Image is an image ID, a unique ID prefix, or a name (with Labels).
	Image  string
	Labels types.Labels
	// Name is the app's name; by default the last part of the image name.
	Name string
	// Exec, User, Group and WorkingDirectory replace the image's when set.
	Exec              []string
	User, Group       string
	SupplementaryGIDs []int
	WorkingDirectory  string
	// Env is added to the image's environment, replacing same names.
	Env            types.Environment
	Mounts         []schema.Mount
	ReadOnlyRootFS bool
	// Isolators are added to the app's (the image's).
	Isolators types.Isolators
	// Interactive runs the app on a terminal that clients attach to
	// (the app annotation InteractiveAnnotation); TTY makes it one for
	// clients on a terminal.
	Interactive, TTY bool
}

// InteractiveAnnotation on an app of a pod manifest runs the app on a
// terminal held by its pod's init, which clients attach to (Pod.Attach,
// kurma run --interactive, kurma attach), instead of with /dev/null as
// its stdin and its output to the log alone. "tty": a terminal as
// terminals are (echo, \r\n), for clients on a terminal; "true": one
// that passes data as it is; "false": none.
const InteractiveAnnotation = "kurmaos.io/interactive"

// interactive reports whether the pod manifest's app asks for a
// terminal, and which.
func interactive(ra schema.RuntimeApp) (on, tty bool) {
	v, _ := ra.Annotations.Get(InteractiveAnnotation)
	return v == "true" || v == "tty", v == "tty"
}

// ParseManifest decodes and checks a pod manifest against the schema.
func ParseManifest(data []byte) (*schema.PodManifest, error) {
	if len(data) > maxManifestBytes {
		return nil, invalid("pod manifest larger than %d bytes", maxManifestBytes)
	}
	var pm schema.PodManifest
	if err := json.Unmarshal(data, &pm); err != nil {
		return nil, invalid("pod manifest: %v", err)
	}
	return &pm, nil
}

const maxManifestBytes = 1 << 20

// plan is a validated pod: everything resolved that can be before
// anything is created.
type plan struct {
	manifest      *schema.PodManifest
	apps          []appPlan
	hostNetwork   bool
	hostUTS       bool
	warnings      []string
	emptyVolumes  map[string]types.Volume
	manifestBytes []byte
	// iso is what the isolators resolve to; privileged says the pod
	// asked host/privileged.
	iso        *isolation
	privileged bool
	// userNS says the pod runs in a user namespace of its own
	// (os/linux/namespaces, user: child); copyRoots that its apps' roots
	// are copies of their images (no ID-mapped layers).
	userNS, copyRoots bool
}

type appPlan struct {
	name   string
	img    *image.Image
	app    *types.App
	layers []string // image IDs, lowest first
	mounts []mountPlan
	ro     bool
	annots types.Annotations
	// interactive, tty: InteractiveAnnotation.
	interactive, tty bool
}

type mountPlan struct {
	volume    types.Volume
	target    string
	readOnly  bool
	recursive bool
}

// ManifestFromImages builds the pod manifest of the "run these images"
// shortcut, as Create does for CreateOptions.Images.
func ManifestFromImages(images *image.Store, apps []ImageApp, volumes []types.Volume) (*schema.PodManifest, error) {
	return fromImages(images, apps, volumes)
}

// fromImages builds the pod manifest of the shortcut.
func fromImages(images *image.Store, apps []ImageApp, volumes []types.Volume) (*schema.PodManifest, error) {
	pm := schema.BlankPodManifest()
	pm.Volumes = volumes
	have := map[types.ACName]bool{}
	for _, v := range volumes {
		have[v.Name] = true
	}
	for _, ia := range apps {
		img, err := findImage(images, ia.Image, ia.Labels)
		if err != nil {
			return nil, err
		}
		if img.Manifest.App == nil && len(ia.Exec) == 0 {
			return nil, invalid("image %s has no app: give the command to run", img.Name())
		}
		name := ia.Name
		if name == "" {
			name = path.Base(img.Name())
		}
		an, err := types.NewACName(name)
		if err != nil {
			return nil, invalid("app name %q: %v", name, err)
		}
		app := &types.App{User: "0", Group: "0"}
		if img.Manifest.App != nil {
			c := *img.Manifest.App
			app = &c
		}
		if len(ia.Exec) > 0 {
			app.Exec = ia.Exec
		}
		if ia.User != "" {
			app.User = ia.User
		}
		if ia.Group != "" {
			app.Group = ia.Group
		}
		if ia.SupplementaryGIDs != nil {
			app.SupplementaryGIDs = ia.SupplementaryGIDs
		}
		if ia.WorkingDirectory != "" {
			app.WorkingDirectory = ia.WorkingDirectory
		}
		env := append(types.Environment{}, app.Environment...)
		for _, e := range ia.Env {
			env.Set(e.Name, e.Value)
		}
		app.Environment = env
		app.Isolators = append(append(types.Isolators{}, app.Isolators...), ia.Isolators...)
		id, err := types.NewHash(img.ID)
		if err != nil {
			return nil, err
		}
		iname, err := types.NewACIdentifier(img.Name())
		if err != nil {
			return nil, err
		}
		ra := schema.RuntimeApp{Name: *an, Image: schema.RuntimeImage{ID: *id, Name: iname}, App: app, Mounts: ia.Mounts, ReadOnlyRootFS: ia.ReadOnlyRootFS}
		switch {
		case ia.Interactive && ia.TTY:
			ra.Annotations.Set(InteractiveAnnotation, "tty")
		case ia.Interactive:
			ra.Annotations.Set(InteractiveAnnotation, "true")
		}
		// A mount point nothing fills gets an empty volume of its own
		// name, shared by the apps that have it.
		for _, mp := range app.MountPoints {
			if satisfied(mp, ra.Mounts) != nil {
				continue
			}
			if !have[mp.Name] {
				mode, uid, gid := "0755", 0, 0
				pm.Volumes = append(pm.Volumes, types.Volume{Name: mp.Name, Kind: "empty", Mode: &mode, UID: &uid, GID: &gid})
				have[mp.Name] = true
			}
			ra.Mounts = append(ra.Mounts, schema.Mount{Volume: mp.Name, Path: mp.Path})
		}
		pm.Apps = append(pm.Apps, ra)
	}
	return pm, nil
}

func findImage(images *image.Store, ref string, labels types.Labels) (*image.Image, error) {
	if strings.HasPrefix(ref, "sha512-") {
		img, err := images.Get(ref)
		if err != nil {
			return nil, invalid("image %s: %v", ref, err)
		}
		return img, nil
	}
	name, version, ok := strings.Cut(ref, ":")
	if ok {
		labels = append(append(types.Labels{}, labels...), types.Label{Name: "version", Value: version})
	}
	img, err := images.Find(name, labels)
	if err != nil {
		return nil, invalid("image %s: %v", ref, err)
	}
	return img, nil
}

// satisfied returns the mount that fills a mount point: one naming its
// volume after the mount point, or one at its path.
func satisfied(mp types.MountPoint, mounts []schema.Mount) *schema.Mount {
	for i, m := range mounts {
		if m.Volume == mp.Name {
			return &mounts[i]
		}
	}
	for i, m := range mounts {
		if path.Clean(m.Path) == path.Clean(mp.Path) {
			return &mounts[i]
		}
	}
	return nil
}

// validate checks a pod manifest against the store and the host, and
// resolves it. It creates nothing.
func validate(ctx context.Context, images *image.Store, pm *schema.PodManifest, allowPrivileged bool) (*plan, error) {
	if pm == nil {
		return nil, invalid("no pod manifest and no images")
	}
	if pm.ACKind == "" {
		pm.ACKind = schema.PodManifestKind
	}
	if pm.ACVersion.Empty() {
		pm.ACVersion = schema.AppContainerVersion
	}
	if len(pm.Apps) == 0 {
		return nil, invalid("a pod needs at least one app")
	}
	p := &plan{manifest: pm, emptyVolumes: map[string]types.Volume{}}
	vols := map[types.ACName]types.Volume{}
	for _, v := range pm.Volumes {
		if err := checkVolume(v); err != nil {
			return nil, err
		}
		vols[v.Name] = v
	}
	for i := range pm.Apps {
		ra := &pm.Apps[i]
		ap, err := validateApp(ctx, images, ra, vols)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", ra.Name, err)
		}
		for _, m := range ap.mounts {
			if m.volume.Kind == "empty" {
				p.emptyVolumes[m.volume.Name.String()] = m.volume
			}
		}
		p.apps = append(p.apps, *ap)
	}
	if err := p.resolveIsolators(allowPrivileged); err != nil {
		return nil, err
	}
	// The reified manifest: image IDs in full, names filled in.
	// Marshalling runs the schema's own checks (kind, unique names).
	data, err := json.Marshal(pm)
	if err != nil {
		return nil, invalid("pod manifest: %v", err)
	}
	p.manifestBytes = data
	return p, nil
}

func validateApp(ctx context.Context, images *image.Store, ra *schema.RuntimeApp, vols map[types.ACName]types.Volume) (*appPlan, error) {
	var img *image.Image
	var err error
	if !ra.Image.ID.Empty() {
		img, err = images.Get(ra.Image.ID.String())
	} else if ra.Image.Name != nil {
		img, err = images.Find(ra.Image.Name.String(), ra.Image.Labels)
	} else {
		return nil, invalid("no image ID")
	}
	if err != nil {
		return nil, invalid("image: %v", err)
	}
	id, err := types.NewHash(img.ID)
	if err != nil {
		return nil, invalid("image ID %s: %v", img.ID, err)
	}
	ra.Image.ID = *id
	if ra.Image.Name == nil {
		ra.Image.Name = &img.Manifest.Name
	} else if ra.Image.Name.String() != img.Name() {
		return nil, invalid("image %s is named %s, not %s", img.ID, img.Name(), ra.Image.Name)
	}
	app := ra.App
	if app == nil {
		app = img.Manifest.App
	}
	if app == nil {
		return nil, invalid("image %s has no app and the pod manifest gives none", img.Name())
	}
	if len(app.Exec) == 0 {
		return nil, invalid("no exec")
	}
	for _, iso := range app.Isolators {
		if iso.Value() == nil {
			return nil, invalid("isolator %s is unknown: the appc schema allows unknown isolators at the pod's level only", iso.Name)
		}
	}
	for _, h := range app.EventHandlers {
		if h.Name != "pre-start" && h.Name != "post-stop" {
			return nil, invalid("unknown event handler %q", h.Name)
		}
		if len(h.Exec) == 0 {
			return nil, invalid("event handler %s has no exec", h.Name)
		}
	}
	if wd := app.WorkingDirectory; wd != "" && !path.IsAbs(wd) {
		return nil, invalid("working directory %q is not absolute", wd)
	}
	if app.User == "" || app.Group == "" {
		return nil, invalid("user and group are required")
	}
	layers, err := images.Layers(ctx, img.ID)
	if err != nil {
		return nil, invalid("image %s: %v", img.Name(), err)
	}
	ap := &appPlan{name: ra.Name.String(), img: img, app: app, ro: ra.ReadOnlyRootFS}
	for _, l := range layers {
		ap.layers = append(ap.layers, l.Image.ID)
	}
	for _, mp := range app.MountPoints {
		if satisfied(mp, ra.Mounts) == nil {
			return nil, invalid("mount point %s (%s) is not satisfied by any mount", mp.Name, mp.Path)
		}
	}
	var targets []string
	for _, m := range ra.Mounts {
		v, ok := vols[m.Volume]
		if m.AppVolume != nil {
			v, ok = *m.AppVolume, true
			if err := checkVolume(v); err != nil {
				return nil, err
			}
		}
		if !ok {
			return nil, invalid("mount %s: no volume %s", m.Path, m.Volume)
		}
		target := path.Clean(m.Path)
		if !path.IsAbs(m.Path) || target == "/" {
			return nil, invalid("mount of %s: path %q must be absolute and not /", m.Volume, m.Path)
		}
		for _, sys := range []string{"/proc", "/sys", "/dev"} {
			if target == sys || strings.HasPrefix(target, sys+"/") {
				return nil, invalid("mount of %s: %s is under %s, which the runtime provides", m.Volume, target, sys)
			}
		}
		for _, t := range targets {
			if t == target || strings.HasPrefix(target, t+"/") || strings.HasPrefix(t, target+"/") {
				return nil, invalid("mounts at %s and %s overlap", t, target)
			}
		}
		targets = append(targets, target)
		ap.mounts = append(ap.mounts, mountPlan{volume: v, target: target, readOnly: readOnly(v, m, app.MountPoints), recursive: v.Recursive == nil || *v.Recursive})
	}
	ap.annots = appAnnotations(img, *ra)
	if v, ok := ra.Annotations.Get(InteractiveAnnotation); ok && v != "true" && v != "tty" && v != "false" {
		return nil, invalid("app %s: annotation %s is %q: want tty, true or false", ra.Name, InteractiveAnnotation, v)
	}
	ap.interactive, ap.tty = interactive(*ra)
	return ap, nil
}

// appAnnotations are the image's annotations with the pod manifest's app
// annotations over them.
func appAnnotations(img *image.Image, ra schema.RuntimeApp) types.Annotations {
	annots := append(types.Annotations{}, img.Manifest.Annotations...)
	for _, a := range ra.Annotations {
		annots.Set(a.Name, a.Value)
	}
	return annots
}

// readOnly applies the spec's precedence: the volume's readOnly, when the
// pod manifest gives it, wins over the app's mount point.
func readOnly(v types.Volume, m schema.Mount, mps []types.MountPoint) bool {
	if v.ReadOnly != nil {
		return *v.ReadOnly
	}
	for _, mp := range mps {
		if mp.Name == m.Volume || path.Clean(mp.Path) == path.Clean(m.Path) {
			return mp.ReadOnly
		}
	}
	return false
}

// checkVolume checks a volume against the host: a host volume's source
// must exist and no component of it may be a symlink (ace.md).
func checkVolume(v types.Volume) error {
	switch v.Kind {
	case "empty":
		if _, err := volumeMode(v); err != nil {
			return err
		}
		return nil
	case "host":
		if !filepath.IsAbs(v.Source) || filepath.Clean(v.Source) != v.Source {
			return invalid("volume %s: source %q must be a clean absolute path", v.Name, v.Source)
		}
		for p := v.Source; p != "/"; p = filepath.Dir(p) {
			st, err := os.Lstat(p)
			if err != nil {
				return invalid("volume %s: source %s: %v", v.Name, v.Source, errors.Unwrap(err))
			}
			if st.Mode()&os.ModeSymlink != 0 {
				return invalid("volume %s: source %s: %s is a symlink (refused)", v.Name, v.Source, p)
			}
		}
		return nil
	}
	return invalid("volume %s: unknown kind %q", v.Name, v.Kind)
}

func volumeMode(v types.Volume) (os.FileMode, error) {
	mode := "0755"
	if v.Mode != nil {
		mode = *v.Mode
	}
	m, err := strconv.ParseUint(mode, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, invalid("volume %s: mode %q is not an octal mode", v.Name, mode)
	}
	fm := os.FileMode(m & 0o777)
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	return fm, nil
}

// NamespacesIsolator is Kurma's isolator choosing, per namespace, between
// a new one ("child", the default) and the host's ("host"), e.g.
// {"name": "os/linux/namespaces", "value": {"net": "host"}}. The mount
// and PID namespaces of a pod are always new, the IPC one unless the pod
// is privileged: asking for the host's is reported as refused in the
// pod's isolator statuses.
const NamespacesIsolator = "os/linux/namespaces"
