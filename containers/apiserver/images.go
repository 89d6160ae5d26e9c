package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/appc/spec/schema/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/containers/fetch"
	"github.com/kurmaos/kurma/containers/image"
)

// Insecure says which insecure fetch options the configuration lets
// callers ask for.
type Insecure struct {
	SkipSignature bool
	AllowHTTP     bool
}

type imageService struct {
	store    *image.Store
	events   *Events
	insecure Insecure
}

func imageProto(img *image.Image) *kurmav1.Image {
	out := &kurmav1.Image{
		Id:         img.ID,
		Size:       img.Size,
		ImportedAt: timestamppb.New(img.ImportedAt),
		Source:     img.Source,
		Labels:     map[string]string{},
	}
	if m := img.Manifest; m != nil {
		out.Name = m.Name.String()
		for _, l := range m.Labels {
			out.Labels[l.Name.String()] = l.Value
		}
		out.Manifest, _ = json.Marshal(m) // it was unmarshalled from JSON
	}
	return out
}

func (s *imageService) Import(ctx context.Context, stream *connect.ClientStream[kurmav1.ImportImageRequest]) (*connect.Response[kurmav1.ImportImageResponse], error) {
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return nil, err
		}
		return nil, invalid("import: no request: the first message must carry the options")
	}
	opts := stream.Msg().GetOptions()
	if opts == nil {
		return nil, invalid("import: the first message must carry the options, not data")
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for stream.Receive() {
			data := stream.Msg().GetData()
			if data == nil {
				pw.CloseWithError(invalid("import: every message after the first must carry data"))
				return
			}
			if _, err := pw.Write(data); err != nil {
				return // the import stopped reading: its error is returned
			}
		}
		pw.CloseWithError(stream.Err()) // nil: EOF
	}()
	source := opts.Source
	if source == "" {
		source = "upload"
	}
	img, err := s.store.Import(ctx, pr, image.ImportOptions{Source: source, ExpectedID: opts.ExpectedId})
	pr.CloseWithError(errors.New("import finished")) // unblock the reader goroutine
	if err != nil {
		// The client may still be sending: read what is left (bounded)
		// so that it gets this answer, not a broken stream.
		select {
		case <-done:
			drainUploads(ctx, stream.Conn())
		case <-time.After(drainTimeout): // a client that neither sends nor closes
		}
		return nil, apiError(err)
	}
	s.events.Publish("image", img.ID, imageProto(img).Name, "imported", source)
	return connect.NewResponse(&kurmav1.ImportImageResponse{Image: imageProto(img)}), nil
}

func (s *imageService) Fetch(ctx context.Context, req *connect.Request[kurmav1.FetchImageRequest], stream *connect.ServerStream[kurmav1.FetchImageResponse]) error {
	r := req.Msg
	if r.Ref == "" {
		return invalid("fetch: no image name or URL given")
	}
	var opts fetch.Options
	if r.InsecureSkipSignature {
		if !s.insecure.SkipSignature {
			return connect.NewError(connect.CodePermissionDenied, errorf("fetch: skipping the signature check is not allowed by the configuration (images.insecure.skip_signature)"))
		}
		opts.Insecure |= fetch.InsecureSkipSignature
	}
	if r.InsecureAllowHttp {
		if !s.insecure.AllowHTTP {
			return connect.NewError(connect.CodePermissionDenied, errorf("fetch: plain HTTP is not allowed by the configuration (images.insecure.allow_http)"))
		}
		opts.Insecure |= fetch.InsecureAllowHTTP
	}
	var (
		mu       sync.Mutex
		last     time.Time
		sendErr  error
		progress = func(p fetch.Progress, force bool) {
			mu.Lock()
			defer mu.Unlock()
			if sendErr != nil || (!force && time.Since(last) < 100*time.Millisecond) {
				return
			}
			last = time.Now()
			sendErr = stream.Send(&kurmav1.FetchImageResponse{Event: &kurmav1.FetchImageResponse_Progress{
				Progress: &kurmav1.Progress{What: p.URL, Done: p.Done, Total: max(p.Total, 0)},
			}})
		}
	)
	opts.Progress = func(p fetch.Progress) { progress(p, p.Total > 0 && p.Done == p.Total) }
	img, err := s.store.Fetch(ctx, r.Ref, opts)
	if err != nil {
		return apiError(err)
	}
	if sendErr != nil {
		return sendErr
	}
	s.events.Publish("image", img.ID, imageProto(img).Name, "fetched", r.Ref)
	return stream.Send(&kurmav1.FetchImageResponse{Event: &kurmav1.FetchImageResponse_Image{Image: imageProto(img)}})
}

func (s *imageService) List(ctx context.Context, _ *connect.Request[kurmav1.ListImagesRequest]) (*connect.Response[kurmav1.ListImagesResponse], error) {
	var out []*kurmav1.Image
	for _, img := range s.store.List() {
		out = append(out, imageProto(img))
	}
	return connect.NewResponse(&kurmav1.ListImagesResponse{Images: out}), nil
}

func (s *imageService) Get(ctx context.Context, req *connect.Request[kurmav1.GetImageRequest]) (*connect.Response[kurmav1.GetImageResponse], error) {
	img, err := s.lookup(req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&kurmav1.GetImageResponse{Image: imageProto(img)}), nil
}

func (s *imageService) lookup(r *kurmav1.GetImageRequest) (*image.Image, error) {
	switch by := r.By.(type) {
	case *kurmav1.GetImageRequest_Id:
		if by.Id == "" {
			return nil, invalid("get image: empty ID")
		}
		img, err := s.store.Get(by.Id)
		return img, apiError(err)
	case *kurmav1.GetImageRequest_Name:
		if by.Name.GetName() == "" {
			return nil, invalid("get image: empty name")
		}
		var labels types.Labels
		for k, v := range by.Name.Labels {
			id, err := types.NewACIdentifier(k)
			if err != nil {
				return nil, invalid("get image: label %q: %v", k, err)
			}
			labels = append(labels, types.Label{Name: *id, Value: v})
		}
		img, err := s.store.Find(by.Name.Name, labels)
		return img, apiError(err)
	}
	return nil, invalid("get image: give an ID or a name")
}

func (s *imageService) Remove(ctx context.Context, req *connect.Request[kurmav1.RemoveImageRequest]) (*connect.Response[kurmav1.RemoveImageResponse], error) {
	if req.Msg.Id == "" {
		return nil, invalid("remove image: empty ID")
	}
	img, err := s.store.Get(req.Msg.Id)
	if err != nil {
		return nil, apiError(err)
	}
	if err := s.store.Remove(ctx, img.ID); err != nil {
		return nil, apiError(err)
	}
	s.events.Publish("image", img.ID, imageProto(img).Name, "removed", "")
	return connect.NewResponse(&kurmav1.RemoveImageResponse{}), nil
}

func (s *imageService) GC(ctx context.Context, _ *connect.Request[kurmav1.GCImagesRequest]) (*connect.Response[kurmav1.GCImagesResponse], error) {
	res, err := s.store.GC(ctx, image.GCOptions{})
	if err != nil {
		return nil, apiError(err)
	}
	for _, id := range res.Images {
		s.events.Publish("image", id, "", "removed", "garbage collected")
	}
	return connect.NewResponse(&kurmav1.GCImagesResponse{Removed: res.Images, FreedBytes: res.Freed}), nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
