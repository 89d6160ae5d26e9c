package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/containers/fetch"
	"github.com/kurmaos/kurma/containers/image"
	"github.com/kurmaos/kurma/containers/pod"
)

// PodService serves PodService over a pod manager.
type PodService struct {
	Pods   *pod.Manager
	Images *image.Store
	Events *Events
	// Fetch, when set, fetches an image a RunSpec names that is not in
	// the store (RunSpec.fetch).
	Fetch func(ctx context.Context, ref string) (*image.Image, error)
	// Addresses, when set, gives a pod's network addresses.
	Addresses func(uuid string) []string
}

// pod renders a pod's status with its addresses.
func (s *PodService) pod(st pod.Status) *kurmav1.Pod {
	p := podProto(st)
	if s.Addresses != nil && !st.State.Ended() {
		p.Addresses = s.Addresses(st.UUID)
	}
	return p
}

var podName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (s *PodService) Create(ctx context.Context, req *connect.Request[kurmav1.CreatePodRequest]) (*connect.Response[kurmav1.CreatePodResponse], error) {
	r := req.Msg
	if r.Name != "" && !podName.MatchString(r.Name) {
		return nil, invalid("create: pod name %q: use lowercase letters, digits and dashes, at most 63, starting and ending with a letter or digit", r.Name)
	}
	opts := pod.CreateOptions{Name: r.Name, AllowPrivileged: MayUseHostIsolators(RoleOf(ctx))}
	switch spec := r.Spec.(type) {
	case *kurmav1.CreatePodRequest_Manifest:
		m, err := pod.ParseManifest(spec.Manifest)
		if err != nil {
			return nil, apiError(err)
		}
		opts.Manifest = m
	case *kurmav1.CreatePodRequest_Run:
		if err := s.runOptions(ctx, spec.Run, &opts); err != nil {
			return nil, err
		}
	default:
		return nil, invalid("create: give a pod manifest or the images to run")
	}
	if r.Replace {
		if r.Name == "" {
			return nil, invalid("create: replace needs the name of the pod to replace")
		}
		n, err := s.replace(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		opts.Restarts = n
	}
	p, err := s.Pods.Create(ctx, opts)
	if p != nil {
		s.Events.Publish("pod", p.UUID(), p.Name(), "created", "")
	}
	if err != nil {
		if p != nil {
			return nil, connect.NewError(connect.CodeFailedPrecondition, errorf("pod %s failed: %v (remove it with kurma rm %s)", p.UUID(), err, p.UUID()))
		}
		return nil, apiError(err)
	}
	s.Events.Publish("pod", p.UUID(), p.Name(), "started", "")
	st := p.Status()
	if r.Wait {
		if st, err = p.Wait(ctx); err != nil {
			return nil, apiError(err)
		}
		s.Events.Publish("pod", p.UUID(), p.Name(), string(st.State), st.Error)
	}
	return connect.NewResponse(&kurmav1.CreatePodResponse{Pod: s.pod(st)}), nil
}

// replace removes the ended pod named name, if there is one, and returns
// the restart count of the pod that takes its place.
func (s *PodService) replace(ctx context.Context, name string) (int, error) {
	old, err := s.Pods.Get(name)
	if errors.Is(err, pod.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, apiError(err)
	}
	st := old.Status()
	if st.Name != name {
		return 0, nil // name is the UUID prefix of another pod, not its name
	}
	if !st.State.Ended() {
		return 0, connect.NewError(connect.CodeFailedPrecondition, errorf("create: pod %s (%s) is %s: only an ended pod is replaced", name, st.UUID, st.State))
	}
	if err := s.Pods.Remove(ctx, st.UUID); err != nil {
		return 0, apiError(err)
	}
	s.Events.Publish("pod", st.UUID, name, "removed", "replaced")
	return st.Restarts + 1, nil
}

// runOptions turns the "run these images" shortcut into create options,
// fetching images the store lacks when asked to.
func (s *PodService) runOptions(ctx context.Context, run *kurmav1.RunSpec, opts *pod.CreateOptions) error {
	if len(run.Apps) == 0 {
		return invalid("create: no app to run")
	}
	for i, a := range run.Apps {
		name, labels, err := fetch.ParseName(a.Image)
		if err != nil {
			return invalid("create: app %d: image %q: %v", i, a.Image, err)
		}
		if strings.HasPrefix(a.Image, "sha512-") {
			name, labels = a.Image, nil
		}
		if _, err := s.resolve(name, labels); err != nil {
			if !run.Fetch || s.Fetch == nil || !errors.Is(err, image.ErrNotFound) {
				return apiError(err)
			}
			if _, err := s.Fetch(ctx, a.Image); err != nil {
				return apiError(err)
			}
		}
		if a.Tty && !a.Interactive {
			return invalid("create: app %d: tty without interactive", i)
		}
		app := pod.ImageApp{Image: name, Labels: labels, Name: a.Name, Exec: a.Exec, User: a.User, Group: a.Group, WorkingDirectory: a.WorkingDirectory,
			Interactive: a.Interactive, TTY: a.Tty}
		isos, err := isolators(a.Isolators)
		if err != nil {
			return invalid("create: app %d: %v", i, err)
		}
		app.Isolators = isos
		for k, v := range a.Environment {
			app.Env.Set(k, v)
		}
		for _, m := range a.Mounts {
			vol, err := types.NewACName(m.Volume)
			if err != nil {
				return invalid("create: app %d: volume %q: %v", i, m.Volume, err)
			}
			mount := schema.Mount{Volume: *vol, Path: m.Path}
			if strings.HasPrefix(m.Path, "/") {
				mount = schema.Mount{Volume: *vol, AppVolume: &types.Volume{Name: *vol, Kind: "host", Source: m.Path}}
				mount.Path = ""
			}
			app.Mounts = append(app.Mounts, mount)
		}
		opts.Images = append(opts.Images, app)
	}
	for _, v := range run.Volumes {
		name, err := types.NewACName(v.Name)
		if err != nil {
			return invalid("create: volume %q: %v", v.Name, err)
		}
		vol := types.Volume{Name: *name, Kind: v.Kind, Source: v.Source}
		if v.ReadOnly {
			ro := true
			vol.ReadOnly = &ro
		}
		if v.Kind == "host" {
			rec := v.Recursive
			vol.Recursive = &rec
		}
		if v.Kind == "empty" {
			if v.Mode != "" {
				vol.Mode = &v.Mode
			}
			uid, gid := int(v.Uid), int(v.Gid)
			vol.UID, vol.GID = &uid, &gid
		}
		opts.Volumes = append(opts.Volumes, vol)
	}
	isos, err := isolators(run.Isolators)
	if err != nil {
		return invalid("create: %v", err)
	}
	opts.Isolators = isos
	if run.HostNetwork {
		opts.Isolators = append(opts.Isolators, types.Isolator{Name: pod.NamespacesIsolator, ValueRaw: rawJSON(`{"net":"host"}`)})
	}
	return nil
}

// isolators reads the API's isolators as the appc schema does.
func isolators(in []*kurmav1.Isolator) (types.Isolators, error) {
	var out types.Isolators
	for _, i := range in {
		name, err := types.NewACIdentifier(i.Name)
		if err != nil {
			return nil, fmt.Errorf("isolator %q: %v", i.Name, err)
		}
		doc, err := json.Marshal(map[string]any{"name": name, "value": json.RawMessage(i.Value)})
		if err != nil {
			return nil, fmt.Errorf("isolator %s: the value is not JSON: %v", i.Name, err)
		}
		var iso types.Isolator
		if err := json.Unmarshal(doc, &iso); err != nil {
			return nil, fmt.Errorf("isolator %s: %v", i.Name, err)
		}
		out = append(out, iso)
	}
	return out, nil
}

func rawJSON(s string) *json.RawMessage {
	r := json.RawMessage(s)
	return &r
}

func (s *PodService) resolve(name string, labels types.Labels) (*image.Image, error) {
	if strings.HasPrefix(name, "sha512-") {
		return s.Images.Get(name)
	}
	return s.Images.Find(name, labels)
}

func (s *PodService) List(ctx context.Context, _ *connect.Request[kurmav1.ListPodsRequest]) (*connect.Response[kurmav1.ListPodsResponse], error) {
	var out []*kurmav1.Pod
	for _, p := range s.Pods.List() {
		out = append(out, s.pod(p.Status()))
	}
	return connect.NewResponse(&kurmav1.ListPodsResponse{Pods: out}), nil
}

func (s *PodService) get(ref string) (*pod.Pod, error) {
	if ref == "" {
		return nil, invalid("no pod given: name it, or give its UUID or a unique prefix of it")
	}
	p, err := s.Pods.Get(ref)
	return p, apiError(err)
}

func (s *PodService) Get(ctx context.Context, req *connect.Request[kurmav1.GetPodRequest]) (*connect.Response[kurmav1.GetPodResponse], error) {
	p, err := s.get(req.Msg.Pod)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&kurmav1.GetPodResponse{Pod: s.pod(p.Status())}), nil
}

func (s *PodService) Wait(ctx context.Context, req *connect.Request[kurmav1.WaitPodRequest]) (*connect.Response[kurmav1.WaitPodResponse], error) {
	p, err := s.get(req.Msg.Pod)
	if err != nil {
		return nil, err
	}
	st, err := p.Wait(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	return connect.NewResponse(&kurmav1.WaitPodResponse{Pod: podProto(st)}), nil
}

func (s *PodService) Stop(ctx context.Context, req *connect.Request[kurmav1.StopPodRequest]) (*connect.Response[kurmav1.StopPodResponse], error) {
	if req.Msg.GraceSeconds < 0 {
		return nil, invalid("stop: grace_seconds %d is negative", req.Msg.GraceSeconds)
	}
	p, err := s.get(req.Msg.Pod)
	if err != nil {
		return nil, err
	}
	if err := p.Stop(ctx, time.Duration(req.Msg.GraceSeconds)*time.Second); err != nil {
		return nil, apiError(err)
	}
	s.Events.Publish("pod", p.UUID(), p.Name(), "stopped", "")
	return connect.NewResponse(&kurmav1.StopPodResponse{Pod: s.pod(p.Status())}), nil
}

func (s *PodService) Remove(ctx context.Context, req *connect.Request[kurmav1.RemovePodRequest]) (*connect.Response[kurmav1.RemovePodResponse], error) {
	p, err := s.get(req.Msg.Pod)
	if err != nil {
		return nil, err
	}
	if st := p.Status().State; !req.Msg.Force && (st == pod.Running || st == pod.Stopping) {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errorf("remove: pod %s is %s: stop it first, or force", p.UUID(), st))
	}
	if err := s.Pods.Remove(ctx, p.UUID()); err != nil {
		return nil, apiError(err)
	}
	s.Events.Publish("pod", p.UUID(), p.Name(), "removed", "")
	return connect.NewResponse(&kurmav1.RemovePodResponse{}), nil
}

func (s *PodService) Enter(ctx context.Context, stream *connect.BidiStream[kurmav1.EnterRequest, kurmav1.EnterResponse]) error {
	first, err := stream.Receive()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return invalid("enter: the first message must say what to run (start)")
	}
	p, err := s.get(start.Pod)
	if err != nil {
		return err
	}
	app, err := chooseApp(p, start.App)
	if err != nil {
		return err
	}
	args := start.Command
	if len(args) == 0 {
		args = []string{"/bin/sh"}
	}
	var env []string
	for k, v := range start.Environment {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return invalid("enter: environment name %q", k)
		}
		env = append(env, k+"="+v)
	}
	stdinR, stdinW := io.Pipe()
	resize := make(chan pod.WindowSize, 4)
	go func() {
		defer stdinW.Close()
		for {
			msg, err := stream.Receive()
			if err != nil {
				return // the client is gone or closed its side
			}
			switch part := msg.Part.(type) {
			case *kurmav1.EnterRequest_Stdin:
				if _, err := stdinW.Write(part.Stdin); err != nil {
					return
				}
			case *kurmav1.EnterRequest_Resize:
				offerSize(resize, part.Resize)
			case *kurmav1.EnterRequest_StdinClosed:
				return
			}
		}
	}()
	var sendMu sync.Mutex // stdout and stderr are copied by two goroutines
	out := &streamWriter{mu: &sendMu, send: func(b []byte) error {
		return stream.Send(&kurmav1.EnterResponse{Part: &kurmav1.EnterResponse_Stdout{Stdout: b}})
	}}
	errOut := &streamWriter{mu: &sendMu, send: func(b []byte) error {
		return stream.Send(&kurmav1.EnterResponse{Part: &kurmav1.EnterResponse_Stderr{Stderr: b}})
	}}
	opts := pod.EnterOptions{App: app, Args: args, Env: env, TTY: start.Tty, Stdin: stdinR, Stdout: out, Stderr: errOut, Resize: resize}
	if sz := start.Size; sz != nil {
		opts.Rows, opts.Cols = uint16(sz.Rows), uint16(sz.Cols)
	}
	status, err := p.Enter(ctx, opts)
	stdinR.Close()
	if err != nil {
		return apiError(err)
	}
	return stream.Send(&kurmav1.EnterResponse{Part: &kurmav1.EnterResponse_ExitCode{ExitCode: int32(status.Code)}})
}

func (s *PodService) Attach(ctx context.Context, stream *connect.BidiStream[kurmav1.AttachRequest, kurmav1.AttachResponse]) error {
	first, err := stream.Receive()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return invalid("attach: the first message must name the pod (start)")
	}
	p, err := s.get(start.Pod)
	if err != nil {
		return err
	}
	// The end of the client's requests detaches it.
	ctx, detach := context.WithCancel(ctx)
	defer detach()
	stdinR, stdinW := io.Pipe()
	resize := make(chan pod.WindowSize, 4)
	go func() {
		for {
			msg, err := stream.Receive()
			if err != nil {
				// Not the end of the app's input: no ^D.
				stdinW.CloseWithError(errDetached)
				detach()
				return
			}
			switch part := msg.Part.(type) {
			case *kurmav1.AttachRequest_Stdin:
				if _, err := stdinW.Write(part.Stdin); err != nil {
					return
				}
			case *kurmav1.AttachRequest_Resize:
				offerSize(resize, part.Resize)
			case *kurmav1.AttachRequest_StdinClosed:
				stdinW.Close() // the app's input ends; the client stays
			}
		}
	}()
	out := &streamWriter{mu: &sync.Mutex{}, send: func(b []byte) error {
		return stream.Send(&kurmav1.AttachResponse{Part: &kurmav1.AttachResponse_Stdout{Stdout: b}})
	}}
	opts := pod.AttachOptions{App: start.App, TTY: start.Tty, Stdin: stdinR, Stdout: out, Resize: resize}
	if sz := start.Size; sz != nil {
		opts.Rows, opts.Cols = uint16(sz.Rows), uint16(sz.Cols)
	}
	status, err := p.Attach(ctx, opts)
	stdinR.Close()
	if err != nil {
		return apiError(err)
	}
	return stream.Send(&kurmav1.AttachResponse{Part: &kurmav1.AttachResponse_ExitCode{ExitCode: int32(status.Code)}})
}

var errDetached = errors.New("the client detached")

// offerSize passes a client's terminal size on, unless the last one is
// still waiting: sizes come faster than they are applied, and the next
// one wins.
func offerSize(resize chan<- pod.WindowSize, sz *kurmav1.TerminalSize) {
	select {
	case resize <- pod.WindowSize{Rows: uint16(sz.Rows), Cols: uint16(sz.Cols)}:
	default:
	}
}

// chooseApp names the app to enter: the one asked for, or the pod's only
// app.
func chooseApp(p *pod.Pod, want string) (string, error) {
	var names []string
	for _, a := range p.Status().Apps {
		if a.Name == want {
			return want, nil
		}
		names = append(names, a.Name)
	}
	switch {
	case want == "" && len(names) == 1:
		return names[0], nil
	case want == "":
		return "", invalid("enter: pod %s has %d apps (%s): name one", p.UUID(), len(names), strings.Join(names, ", "))
	}
	return "", connect.NewError(connect.CodeNotFound, errorf("enter: pod %s has no app %q (it has %s)", p.UUID(), want, strings.Join(names, ", ")))
}

// streamWriter sends what is written as stream messages, one at a time
// on the stream (mu is shared by the writers of one stream).
type streamWriter struct {
	mu   *sync.Mutex
	send func([]byte) error
}

func (w *streamWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.send(append([]byte(nil), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *PodService) Logs(ctx context.Context, req *connect.Request[kurmav1.LogsRequest], stream *connect.ServerStream[kurmav1.LogsResponse]) error {
	r := req.Msg
	if r.Tail < 0 {
		return invalid("logs: tail %d is negative", r.Tail)
	}
	p, err := s.get(r.Pod)
	if err != nil {
		return err
	}
	var apps []string
	for _, a := range p.Status().Apps {
		if r.App == "" || a.Name == r.App {
			apps = append(apps, a.Name)
		}
	}
	if len(apps) == 0 {
		return connect.NewError(connect.CodeNotFound, errorf("logs: pod %s has no app %q", p.UUID(), r.App))
	}
	return followLogs(ctx, p, apps, int(r.Tail), r.Follow, func(app string, data []byte) error {
		return stream.Send(&kurmav1.LogsResponse{App: app, Stream: "output", Data: data})
	})
}

func podProto(st pod.Status) *kurmav1.Pod {
	out := &kurmav1.Pod{
		Uuid:       st.UUID,
		Name:       st.Name,
		State:      stateProto(st.State),
		Message:    st.Error,
		Warnings:   st.Warnings,
		Isolators:  isolatorProtos(st.Isolators),
		CreatedAt:  ts(st.CreatedAt),
		StartedAt:  ts(st.StartedAt),
		FinishedAt: ts(st.EndedAt),
	}
	for _, a := range st.Apps {
		app := &kurmav1.App{Name: a.Name, ImageId: a.ImageID, StartedAt: ts(a.StartedAt), FinishedAt: ts(a.ExitedAt), Restarts: int32(st.Restarts)}
		switch a.State {
		case "running":
			app.State = kurmav1.AppState_APP_STATE_RUNNING
		case "exited":
			app.State = kurmav1.AppState_APP_STATE_EXITED
		default:
			app.State = kurmav1.AppState_APP_STATE_WAITING
		}
		if a.Exit != nil {
			app.ExitCode, app.Signal = int32(a.Exit.Code), a.Exit.Signal
		}
		app.OomKilled = a.OOMKilled
		out.Apps = append(out.Apps, app)
	}
	return out
}

func isolatorProtos(in []pod.IsolatorStatus) []*kurmav1.IsolatorStatus {
	var out []*kurmav1.IsolatorStatus
	for _, s := range in {
		out = append(out, &kurmav1.IsolatorStatus{Name: s.Name, App: s.App, Status: s.Status, Message: s.Message})
	}
	return out
}

func stateProto(s pod.State) kurmav1.PodState {
	switch s {
	case pod.Preparing:
		return kurmav1.PodState_POD_STATE_PREPARING
	case pod.Running:
		return kurmav1.PodState_POD_STATE_RUNNING
	case pod.Stopping:
		return kurmav1.PodState_POD_STATE_STOPPING
	case pod.Exited:
		return kurmav1.PodState_POD_STATE_EXITED
	case pod.Failed:
		return kurmav1.PodState_POD_STATE_FAILED
	}
	return kurmav1.PodState_POD_STATE_STOPPED // stopped, removing, removed
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
