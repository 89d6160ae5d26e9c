package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
	"github.com/kurmaos/kurma/api/kurma/v1/kurmav1connect"
	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/image"
)

// testServer serves a Server on a unix socket in a temp dir.
type testServer struct {
	srv    *Server
	socket string
	store  *image.Store
}

func startServer(t *testing.T, extra ...net.Listener) *testServer {
	t.Helper()
	dir := t.TempDir()
	store, err := image.Open(filepath.Join(dir, "images"), image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ts := &testServer{store: store, socket: filepath.Join(dir, "run", "kurma.sock")}
	ts.srv = &Server{Version: "test", Images: store, Events: NewEvents()}
	l, err := ListenUnix(ts.socket, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(ctx, append([]net.Listener{l}, extra...)...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ts
}

// unixClient is an HTTP client that dials the socket, speaking HTTP/2
// without TLS (gRPC) or HTTP/1.1 (Connect, JSON).
func unixClient(socket string, h2 bool) *http.Client {
	var protocols http.Protocols
	if h2 {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	return &http.Client{Transport: &http.Transport{
		Protocols: &protocols,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
}

func testImage(t *testing.T, name, version string) []byte {
	t.Helper()
	return acitest.Image(acitest.Manifest{Name: name, Labels: acitest.HostLabels("version", version)}, acitest.RootFS("etc/hostname")...)
}

func importImage(t *testing.T, client kurmav1connect.ImageServiceClient, data []byte) (*kurmav1.Image, error) {
	t.Helper()
	stream := client.Import(context.Background())
	if err := stream.Send(&kurmav1.ImportImageRequest{Part: &kurmav1.ImportImageRequest_Options{Options: &kurmav1.ImportOptions{}}}); err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 {
		n := min(len(data), 1000)
		if err := stream.Send(&kurmav1.ImportImageRequest{Part: &kurmav1.ImportImageRequest_Data{Data: data[:n]}}); err != nil {
			break // the server answered early; CloseAndReceive has its error
		}
		data = data[n:]
	}
	resp, err := stream.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	return resp.Msg.Image, nil
}

func TestImagesOverGRPC(t *testing.T) {
	ts := startServer(t)
	client := kurmav1connect.NewImageServiceClient(unixClient(ts.socket, true), "http://kurma", connect.WithGRPC())
	aciBytes := testImage(t, "example.com/app", "1.0")
	img, err := importImage(t, client, aciBytes)
	if err != nil {
		t.Fatal(err)
	}
	if img.Id != acitest.ID(aciBytes) || img.Name != "example.com/app" || img.Labels["version"] != "1.0" {
		t.Errorf("imported %+v", img)
	}
	list, err := client.List(context.Background(), connect.NewRequest(&kurmav1.ListImagesRequest{}))
	if err != nil || len(list.Msg.Images) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	got, err := client.Get(context.Background(), connect.NewRequest(&kurmav1.GetImageRequest{By: &kurmav1.GetImageRequest_Name{Name: &kurmav1.NameRef{Name: "example.com/app"}}}))
	if err != nil || got.Msg.Image.Id != img.Id {
		t.Fatalf("get by name: %v %v", got, err)
	}
	_, err = client.Get(context.Background(), connect.NewRequest(&kurmav1.GetImageRequest{By: &kurmav1.GetImageRequest_Id{Id: "sha512-0000"}}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("get of a missing image: %v, want NotFound", err)
	}
	if _, err := client.Remove(context.Background(), connect.NewRequest(&kurmav1.RemoveImageRequest{Id: img.Id[:20]})); err != nil {
		t.Fatalf("remove by prefix: %v", err)
	}
	if n := len(ts.store.List()); n != 0 {
		t.Errorf("%d images after remove", n)
	}
}

func TestImportOfABadImageLeavesNothing(t *testing.T) {
	ts := startServer(t)
	client := kurmav1connect.NewImageServiceClient(unixClient(ts.socket, true), "http://kurma", connect.WithGRPC())
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"not a tar", []byte(strings.Repeat("garbage", 1000))},
		{"path traversal", acitest.Image(acitest.Manifest{Name: "example.com/evil", Labels: acitest.HostLabels()}, acitest.File("rootfs/../../evil", "x"))},
	} {
		_, err := importImage(t, client, tc.data)
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", tc.name, err)
		}
	}
	if n := len(ts.store.List()); n != 0 {
		t.Errorf("%d images after failed imports", n)
	}
	// The first message must carry the options.
	stream := client.Import(context.Background())
	stream.Send(&kurmav1.ImportImageRequest{Part: &kurmav1.ImportImageRequest_Data{Data: []byte("x")}})
	if _, err := stream.CloseAndReceive(); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "first message") {
		t.Errorf("data first: %v", err)
	}
}

// TestSameAnswersOverGRPCAndJSON asks Info with a gRPC client and with a
// plain JSON POST on the socket, as curl would, and compares.
func TestSameAnswersOverGRPCAndJSON(t *testing.T) {
	ts := startServer(t)
	if _, err := ts.store.Import(context.Background(), bytes.NewReader(testImage(t, "example.com/a", "1")), image.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	grpc := kurmav1connect.NewSystemServiceClient(unixClient(ts.socket, true), "http://kurma", connect.WithGRPC())
	info, err := grpc.Info(context.Background(), connect.NewRequest(&kurmav1.InfoRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := unixClient(ts.socket, false).Post("http://kurma/kurma.v1.SystemService/Info", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("JSON: %s: %s", resp.Status, body)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["version"] != info.Msg.Version || doc["hostname"] != info.Msg.Hostname || doc["images"] != float64(info.Msg.Images) || doc["role"] != "admin" {
		t.Errorf("JSON %v differs from gRPC %+v", doc, info.Msg)
	}
	if info.Msg.Images != 1 || info.Msg.Capacity.GetMemoryTotal() == 0 {
		t.Errorf("info %+v", info.Msg)
	}
	// A JSON error has the same code as over gRPC.
	resp, err = unixClient(ts.socket, false).Post("http://kurma/kurma.v1.ImageService/Get", "application/json", strings.NewReader(`{"id":"sha512-ffff"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"code":"not_found"`) {
		t.Errorf("JSON error: %s %s", resp.Status, body)
	}
	_, err = kurmav1connect.NewImageServiceClient(unixClient(ts.socket, true), "http://kurma", connect.WithGRPC()).Get(context.Background(), connect.NewRequest(&kurmav1.GetImageRequest{By: &kurmav1.GetImageRequest_Id{Id: "sha512-ffff"}}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("gRPC error: %v", err)
	}
}

func TestOversizedRequestIsRefused(t *testing.T) {
	ts := startServer(t)
	big := `{"ref":"` + strings.Repeat("a", MaxMessageBytes+10) + `"}`
	resp, err := unixClient(ts.socket, false).Post("http://kurma/kurma.v1.ImageService/Get", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 || !strings.Contains(string(body), "resource_exhausted") {
		t.Errorf("an oversized request got %s %s", resp.Status, body)
	}
}

func TestPowerOnlyOnKurmaOS(t *testing.T) {
	ts := startServer(t)
	client := kurmav1connect.NewSystemServiceClient(unixClient(ts.socket, true), "http://kurma", connect.WithGRPC())
	_, err := client.Reboot(context.Background(), connect.NewRequest(&kurmav1.RebootRequest{}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("reboot on a host: %v, want FailedPrecondition", err)
	}
}

func TestEventsStream(t *testing.T) {
	ts := startServer(t)
	sys := kurmav1connect.NewSystemServiceClient(unixClient(ts.socket, true), "http://kurma", connect.WithGRPC())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := sys.Events(ctx, connect.NewRequest(&kurmav1.EventsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	img, err := importImage(t, kurmav1connect.NewImageServiceClient(unixClient(ts.socket, true), "http://kurma", connect.WithGRPC()), testImage(t, "example.com/ev", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() {
		t.Fatalf("no event: %v", stream.Err())
	}
	if ev := stream.Msg(); ev.Kind != "image" || ev.Action != "imported" || ev.Id != img.Id {
		t.Errorf("event %+v", ev)
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kurma.sock")
	l, err := ListenUnix(path, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode %v, want 0660 socket", fi.Mode())
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A live socket is never taken over.
	if _, err := ListenUnix(path, ""); !errors.Is(err, ErrSocketInUse) {
		t.Errorf("second listen on a live socket: %v, want ErrSocketInUse", err)
	}
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after close: %v", err)
	}
	// A stale socket (its daemon died) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l2, err := ListenUnix(path, "")
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	l2.Close()
	// Something that is not a socket is left alone.
	os.WriteFile(path, []byte("x"), 0o644)
	if _, err := ListenUnix(path, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listen over a file: %v", err)
	}
}

// certSetup makes a CA with server, admin, reader and expired client
// certificates, and a foreign CA with an admin certificate.
type certSetup struct {
	dir                             string
	caPool                          *x509.CertPool
	admin, reader, expired, foreign tls.Certificate
}

func makeCerts(t *testing.T) *certSetup {
	t.Helper()
	dir := t.TempDir()
	if err := WriteSetup(dir, []string{"127.0.0.1", "localhost"}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	load := func(cert, key []byte) tls.Certificate {
		c, err := tls.X509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	loadFiles := func(name string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, err := LoadAuthority(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cs := &certSetup{dir: dir, caPool: x509.NewCertPool(), admin: loadFiles("admin"), reader: loadFiles("reader")}
	cs.caPool.AddCert(ca.Cert)
	cert, key, err := ca.Issue(CertRequest{CommonName: "old", Role: Admin, Validity: time.Hour, NotBefore: time.Now().Add(-48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cs.expired = load(cert, key)
	other, err := NewAuthority("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err = other.Issue(CertRequest{CommonName: "intruder", Role: Admin, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cs.foreign = load(cert, key)
	return cs
}

func tlsClient(cs *certSetup, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: cs.caPool, ServerName: "localhost", NextProtos: []string{"h2"}}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
}

func TestRemoteMTLSAndRoles(t *testing.T) {
	cs := makeCerts(t)
	l, err := ListenTLS("127.0.0.1:0", TLSFiles{
		Cert: filepath.Join(cs.dir, "server.pem"), Key: filepath.Join(cs.dir, "server-key.pem"),
		ClientCA: filepath.Join(cs.dir, "ca.pem"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, l)
	url := "https://" + l.Addr().String()
	info := func(c *http.Client) error {
		_, err := kurmav1connect.NewSystemServiceClient(c, url, connect.WithGRPC()).Info(context.Background(), connect.NewRequest(&kurmav1.InfoRequest{}))
		return err
	}
	for name, cert := range map[string]*tls.Certificate{"no certificate": nil, "another CA": &cs.foreign, "expired": &cs.expired} {
		if err := info(tlsClient(cs, cert)); err == nil {
			t.Errorf("%s: Info was answered", name)
		}
	}
	// A reader reads but may not change anything.
	reader := tlsClient(cs, &cs.reader)
	if err := info(reader); err != nil {
		t.Errorf("reader Info: %v", err)
	}
	images := kurmav1connect.NewImageServiceClient(reader, url, connect.WithGRPC())
	if _, err := images.List(context.Background(), connect.NewRequest(&kurmav1.ListImagesRequest{})); err != nil {
		t.Errorf("reader List: %v", err)
	}
	_, err = importImage(t, images, testImage(t, "example.com/r", "1"))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "reader role may not call ImageService/Import") {
		t.Errorf("reader Import: %v, want PermissionDenied", err)
	}
	pods := kurmav1connect.NewPodServiceClient(reader, url, connect.WithGRPC())
	for name, call := range map[string]func() error{
		"Stop": func() error {
			_, err := pods.Stop(context.Background(), connect.NewRequest(&kurmav1.StopPodRequest{Pod: "x"}))
			return err
		},
		"Create": func() error {
			_, err := pods.Create(context.Background(), connect.NewRequest(&kurmav1.CreatePodRequest{}))
			return err
		},
		"Reboot": func() error {
			_, err := kurmav1connect.NewSystemServiceClient(reader, url, connect.WithGRPC()).Reboot(context.Background(), connect.NewRequest(&kurmav1.RebootRequest{}))
			return err
		},
		"Enter": func() error {
			s := pods.Enter(context.Background())
			s.Send(&kurmav1.EnterRequest{Part: &kurmav1.EnterRequest_Start{Start: &kurmav1.EnterStart{Pod: "x"}}})
			_, err := s.Receive()
			return err
		},
		"Attach": func() error {
			s := pods.Attach(context.Background())
			s.Send(&kurmav1.AttachRequest{Part: &kurmav1.AttachRequest_Start{Start: &kurmav1.AttachStart{Pod: "x"}}})
			_, err := s.Receive()
			return err
		},
	} {
		if err := call(); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("reader %s: %v, want PermissionDenied", name, err)
		}
	}
	// An admin may.
	admin := tlsClient(cs, &cs.admin)
	if _, err := importImage(t, kurmav1connect.NewImageServiceClient(admin, url, connect.WithGRPC()), testImage(t, "example.com/a", "1")); err != nil {
		t.Errorf("admin Import: %v", err)
	}
	if n := len(ts.store.List()); n != 1 {
		t.Errorf("%d images, want the admin's 1", n)
	}
}

// Only admin may create pods with host/privileged or host/api-access.
func TestMayUseHostIsolators(t *testing.T) {
	for role, want := range map[Role]bool{Admin: true, Reader: false, "": false, "operator": false} {
		if got := MayUseHostIsolators(role); got != want {
			t.Errorf("role %q: %v, want %v", role, got, want)
		}
	}
}
