// Package metadata is the appc metadata service (spec/ace.md, "App
// Container Metadata Service"): each pod reaches it at the URL in its
// AC_METADATA_URL, whose path starts with a random token that identifies
// the pod. It serves, under TOKEN/acMetadata/v1:
//
//	GET  pod/annotations             application/json
//	GET  pod/manifest                application/json
//	GET  pod/uuid                    text/plain; charset=us-ascii
//	GET  apps/NAME/annotations       application/json
//	GET  apps/NAME/image/manifest    application/json
//	GET  apps/NAME/image/id          text/plain; charset=us-ascii
//	POST pod/hmac/sign               text/plain; charset=us-ascii (form: content)
//	POST pod/hmac/verify             text/plain; charset=us-ascii (form: content, uuid, signature)
//
// Signatures are base64 HMAC-SHA512 over the pod's UUID and the content,
// with a key only the service holds (kept on disk so that signatures
// stay verifiable across daemon restarts).
//
// How pods reach it: the in-pod init listens on 127.0.0.1:18112 in the
// pod's own network namespace and hands the listening socket to the
// daemon, which serves it (Service.Serve). Pods on the host's network use
// a listener of the daemon on the host's loopback.
package metadata

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/atomicfile"
)

// Content types of the spec.
const (
	JSON = "application/json"
	Text = "text/plain; charset=us-ascii"
)

// Pod is what the service knows of a pod.
type Pod struct {
	UUID string
	// Manifest is the fully reified pod manifest, as JSON.
	Manifest    []byte
	Annotations types.Annotations
	Apps        map[string]App
}

// App is what the service knows of an app.
type App struct {
	ImageID string
	// ImageManifest is the image's manifest, as JSON.
	ImageManifest []byte
	// Annotations are the image's, overridden by the pod manifest's app
	// annotations.
	Annotations types.Annotations
}

// Service serves the metadata of the pods registered with it.
type Service struct {
	key []byte

	mu      sync.Mutex // guards pods and servers
	pods    map[string]*Pod
	servers map[*http.Server]string // server -> pod token ("" for shared)
}

// New returns a service signing with key (at least 32 bytes).
func New(key []byte) (*Service, error) {
	if len(key) < 32 {
		return nil, errors.New("metadata: HMAC key shorter than 32 bytes")
	}
	return &Service{key: key, pods: map[string]*Pod{}, servers: map[*http.Server]string{}}, nil
}

// LoadKey reads the service's HMAC key from file, creating it (64 random
// bytes, mode 0600) if it does not exist.
func LoadKey(file string) ([]byte, error) {
	key, err := os.ReadFile(file)
	if err == nil {
		if len(key) < 32 {
			return nil, fmt.Errorf("metadata: key %s is shorter than 32 bytes", file)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key = make([]byte, 64)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(file, key, 0o600); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return key, nil
}

// NewToken returns a random token of 256 bits, for a pod's URL.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// Register makes the pod's metadata available under token.
func (s *Service) Register(token string, p *Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pods[token] = p
}

// Unregister forgets the pod of token and closes the listeners served
// for it.
func (s *Service) Unregister(token string) {
	s.mu.Lock()
	delete(s.pods, token)
	var stop []*http.Server
	for srv, t := range s.servers {
		if t == token {
			stop = append(stop, srv)
			delete(s.servers, srv)
		}
	}
	s.mu.Unlock()
	for _, srv := range stop {
		_ = srv.Close() // its listener may be gone with the pod's namespace
	}
}

// Serve serves l in the background until the pod of token is
// unregistered (or, for token "", until Close).
func (s *Service) Serve(l net.Listener, token string) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	s.mu.Lock()
	s.servers[srv] = token
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }() // ends when the server is closed
}

// Close stops serving every listener.
func (s *Service) Close() {
	s.mu.Lock()
	servers := s.servers
	s.servers = map[*http.Server]string{}
	s.mu.Unlock()
	for srv := range servers {
		_ = srv.Close() // nothing to do about a listener that fails to close
	}
}

// Sign returns the base64 HMAC-SHA512 signature of content by the pod.
func (s *Service) Sign(uuid string, content []byte) string {
	return base64.StdEncoding.EncodeToString(s.mac(uuid, content))
}

// Verify checks a signature made by Sign.
func (s *Service) Verify(uuid string, content []byte, signature string) bool {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return false
	}
	return hmac.Equal(sig, s.mac(uuid, content))
}

func (s *Service) mac(uuid string, content []byte) []byte {
	m := hmac.New(sha512.New, s.key)
	m.Write([]byte(uuid))
	m.Write([]byte{0})
	m.Write(content)
	return m.Sum(nil)
}

const maxForm = 1 << 20

// ServeHTTP answers TOKEN/acMetadata/v1/... requests.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	s.mu.Lock()
	p := s.pods[token]
	s.mu.Unlock()
	if !ok || p == nil {
		http.Error(w, "unknown pod token", http.StatusUnauthorized)
		return
	}
	rest, ok = strings.CutPrefix(rest, "acMetadata/v1/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case rest == "pod/annotations" && get:
		writeJSON(w, p.Annotations)
	case rest == "pod/manifest" && get:
		write(w, JSON, p.Manifest)
	case rest == "pod/uuid" && get:
		write(w, Text, []byte(p.UUID))
	case rest == "pod/hmac/sign" && r.Method == http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		write(w, Text, []byte(s.Sign(p.UUID, []byte(r.PostForm.Get("content")))))
	case rest == "pod/hmac/verify" && r.Method == http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f := r.PostForm
		if !s.Verify(f.Get("uuid"), []byte(f.Get("content")), f.Get("signature")) {
			w.Header().Set("Content-Type", Text)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		write(w, Text, nil)
	case strings.HasPrefix(rest, "apps/") && get:
		name, what, _ := strings.Cut(strings.TrimPrefix(rest, "apps/"), "/")
		a, ok := p.Apps[name]
		if !ok {
			http.Error(w, "no such app", http.StatusNotFound)
			return
		}
		switch what {
		case "annotations":
			writeJSON(w, a.Annotations)
		case "image/manifest":
			write(w, JSON, a.ImageManifest)
		case "image/id":
			write(w, Text, []byte(a.ImageID))
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

func write(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(body) // a client that went away
}

func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	write(w, JSON, data)
}
