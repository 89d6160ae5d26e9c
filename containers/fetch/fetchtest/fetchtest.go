// Package fetchtest serves images for tests of retrieval: an HTTPS and an
// HTTP server that answer appc discovery and serve files, a signing key,
// a dialer that sends every host name to them (so that image names such
// as example.com/app work without DNS), and a recording proxy.
package fetchtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Server serves files and discovery pages over HTTPS and HTTP.
type Server struct {
	TLS, Plain *httptest.Server

	mu       sync.Mutex
	files    map[string][]byte
	redirs   map[string]string
	meta     string
	requests []string
}

// NewServer starts a server, stopped when the test ends. Its discovery
// page says that every name under the requested host is found at
// https://<host>/images/{name}-{version}-{os}-{arch}.{ext}.
func NewServer(t testing.TB) *Server {
	s := &Server{files: map[string][]byte{}, redirs: map[string]string{}}
	s.TLS = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	s.Plain = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.TLS.Close)
	t.Cleanup(s.Plain.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Host+r.URL.RequestURI())
	meta := s.meta
	data, ok := s.files[r.URL.Path]
	to, redirect := s.redirs[r.URL.Path]
	s.mu.Unlock()
	if redirect {
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	if r.URL.Query().Get("ac-discovery") == "1" {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if meta == "" {
			meta = fmt.Sprintf(`<meta name="ac-discovery" content="%s https://%s/images/{name}-{version}-{os}-{arch}.{ext}">`, host, host)
		}
		fmt.Fprintf(w, "<!DOCTYPE html><html><head>%s</head><body></body></html>", meta)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(data)
}

// Serve makes path (such as "/images/x.aci") answer data.
func (s *Server) Serve(path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = data
}

// Redirect makes path answer a redirect to the URL to.
func (s *Server) Redirect(path, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirs[path] = to
}

// SetMeta replaces the meta tags of the discovery page.
func (s *Server) SetMeta(tags string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta = tags
}

// Requests returns the requests served so far, as host + request URI.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// RootCAs trusts the HTTPS server's certificate (httptest's, valid for
// example.com, 127.0.0.1 and ::1).
func (s *Server) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.TLS.Certificate())
	return pool
}

// Dial connects any host's port 443 to the HTTPS server and any other
// port to the HTTP server.
func (s *Server) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	target := s.Plain.Listener.Addr().String()
	if port == "443" {
		target = s.TLS.Listener.Addr().String()
	}
	var d net.Dialer
	return d.DialContext(ctx, network, target)
}

// Key is an OpenPGP signing key.
type Key struct {
	Entity *openpgp.Entity
}

// NewKey makes an Ed25519 key (fast to make, unlike RSA).
func NewKey(t testing.TB, name string) *Key {
	e, err := openpgp.NewEntity(name, "", name+"@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatalf("make key: %v", err)
	}
	return &Key{e}
}

// Public is the armored public key.
func (k *Key) Public(t testing.TB) []byte {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Entity.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Sign returns an armored detached signature of data.
func (k *Key) Sign(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, k.Entity, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Proxy is an HTTP proxy that records what it is asked and reaches the
// Server whatever the host (CONNECT for HTTPS, absolute URLs for HTTP).
type Proxy struct {
	*httptest.Server
	srv      *Server
	mu       sync.Mutex
	requests []string
}

// NewProxy starts a proxy in front of srv, stopped when the test ends.
func NewProxy(t testing.TB, srv *Server) *Proxy {
	p := &Proxy{srv: srv}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Server.Close)
	return p
}

// Requests returns what the proxy was asked: "CONNECT host:port" or
// "GET http://...".
func (p *Proxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	if r.Method == http.MethodConnect {
		p.requests = append(p.requests, "CONNECT "+r.Host)
	} else {
		p.requests = append(p.requests, r.Method+" "+r.URL.String())
	}
	p.mu.Unlock()
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	client := &http.Client{Transport: &http.Transport{DialContext: p.srv.Dial}}
	resp, err := client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	up, err := p.srv.Dial(r.Context(), "tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	fmt.Fprint(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() {
		defer up.Close()
		defer conn.Close()
		io.Copy(up, bufio.NewReader(buf))
	}()
	io.Copy(conn, up)
	up.Close()
	conn.Close()
}

// ImagePath is where the default discovery page puts an image.
func ImagePath(name, version, os, arch, ext string) string {
	return "/images/" + strings.Join([]string{name, version, os, arch}, "-") + "." + ext
}
