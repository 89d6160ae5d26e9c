package bootstrap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"connectrpc.com/connect"
	"github.com/appc/spec/schema"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/api/kurma/v1/kurmav1connect"
	"github.com/kurmaos/kurma/api/socket"
)

// APIRuntime is the Runtime of a daemon, through its API.
type APIRuntime struct {
	hc     *http.Client
	pods   kurmav1connect.PodServiceClient
	images kurmav1connect.ImageServiceClient
}

// DialAPI returns the Runtime of the daemon serving the API on the unix
// socket at path. It connects when it is first used, and again after
// the daemon restarts.
func DialAPI(path string) *APIRuntime {
	hc := socket.HTTPClient(path)
	opts := []connect.ClientOption{connect.WithGRPC()}
	return &APIRuntime{
		hc:     hc,
		pods:   kurmav1connect.NewPodServiceClient(hc, socket.BaseURL, opts...),
		images: kurmav1connect.NewImageServiceClient(hc, socket.BaseURL, opts...),
	}
}

// Close closes the idle connections.
func (r *APIRuntime) Close() { r.hc.CloseIdleConnections() }

func notFound(err error) error {
	if connect.CodeOf(err) == connect.CodeNotFound {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return err
}

// Image finds, fetches or imports the image.
func (r *APIRuntime) Image(ctx context.Context, ref string) (*Image, error) {
	var img *kurmav1.Image
	var err error
	switch {
	case strings.HasPrefix(ref, "/"):
		img, err = r.importFile(ctx, ref)
	case strings.Contains(ref, "://"):
		img, err = r.fetch(ctx, ref)
	default:
		name, labels := parseName(ref)
		var resp *connect.Response[kurmav1.GetImageResponse]
		resp, err = r.images.Get(ctx, connect.NewRequest(&kurmav1.GetImageRequest{By: &kurmav1.GetImageRequest_Name{Name: &kurmav1.NameRef{Name: name, Labels: labels}}}))
		if connect.CodeOf(err) == connect.CodeNotFound {
			img, err = r.fetch(ctx, ref)
		} else if err == nil {
			img = resp.Msg.Image
		}
	}
	if err != nil {
		return nil, notFound(err)
	}
	var m schema.ImageManifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", img.Id, err)
	}
	return &Image{ID: img.Id, Name: img.Name, App: m.App}, nil
}

// parseName splits "example.com/app:1.0" or
// "example.com/app,version=1.0,os=linux" into a name and labels.
func parseName(ref string) (string, map[string]string) {
	parts := strings.Split(ref, ",")
	name, labels := parts[0], map[string]string{}
	for _, p := range parts[1:] {
		if k, v, ok := strings.Cut(p, "="); ok {
			labels[k] = v
		}
	}
	if n, v, ok := strings.Cut(name, ":"); ok {
		name, labels["version"] = n, v
	}
	return name, labels
}

func (r *APIRuntime) fetch(ctx context.Context, ref string) (*kurmav1.Image, error) {
	stream, err := r.images.Fetch(ctx, connect.NewRequest(&kurmav1.FetchImageRequest{Ref: ref}))
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	for stream.Receive() {
		if img := stream.Msg().GetImage(); img != nil {
			return img, nil
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("fetch ended without an image")
}

// importFile uploads an ACI file: the daemon may not read the same
// files (it is another process, and may run elsewhere in a test).
func (r *APIRuntime) importFile(ctx context.Context, path string) (*kurmav1.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stream := r.images.Import(ctx)
	if err := stream.Send(&kurmav1.ImportImageRequest{Part: &kurmav1.ImportImageRequest_Options{Options: &kurmav1.ImportOptions{Source: path}}}); err != nil {
		_, rerr := stream.CloseAndReceive()
		return nil, errors.Join(err, rerr)
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if serr := stream.Send(&kurmav1.ImportImageRequest{Part: &kurmav1.ImportImageRequest_Data{Data: buf[:n]}}); serr != nil {
				_, rerr := stream.CloseAndReceive()
				return nil, errors.Join(serr, rerr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	resp, err := stream.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	return resp.Msg.Image, nil
}

// Create creates and starts a pod.
func (r *APIRuntime) Create(ctx context.Context, name string, manifest []byte, replace bool) (*kurmav1.Pod, error) {
	resp, err := r.pods.Create(ctx, connect.NewRequest(&kurmav1.CreatePodRequest{Name: name, Spec: &kurmav1.CreatePodRequest_Manifest{Manifest: manifest}, Replace: replace}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.Pod, nil
}

// Wait waits for the pod's end.
func (r *APIRuntime) Wait(ctx context.Context, uuid string) (*kurmav1.Pod, error) {
	resp, err := r.pods.Wait(ctx, connect.NewRequest(&kurmav1.WaitPodRequest{Pod: uuid}))
	if err != nil {
		return nil, notFound(err)
	}
	return resp.Msg.Pod, nil
}

// Remove removes the pod named name. A pod is looked up first, so that a
// name that is also the start of another pod's UUID never removes that
// one.
func (r *APIRuntime) Remove(ctx context.Context, name string) error {
	resp, err := r.pods.Get(ctx, connect.NewRequest(&kurmav1.GetPodRequest{Pod: name}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if resp.Msg.Pod.Name != name {
		return nil
	}
	_, err = r.pods.Remove(ctx, connect.NewRequest(&kurmav1.RemovePodRequest{Pod: resp.Msg.Pod.Uuid, Force: true}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return nil
	}
	return err
}

// Logs follows the pod's output line by line until the pod ends.
func (r *APIRuntime) Logs(ctx context.Context, uuid string, line func(string)) error {
	stream, err := r.pods.Logs(ctx, connect.NewRequest(&kurmav1.LogsRequest{Pod: uuid, Follow: true}))
	if err != nil {
		return notFound(err)
	}
	defer stream.Close()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			line(s.Text())
		}
		_, _ = io.Copy(io.Discard, pr) // a line past the buffer: drop the rest
	}()
	for stream.Receive() {
		if _, err := pw.Write(stream.Msg().Data); err != nil {
			break
		}
	}
	pw.Close()
	<-done
	return stream.Err()
}
