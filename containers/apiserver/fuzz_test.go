package apiserver

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"connectrpc.com/connect"

	"github.com/kurmaos/kurma/containers/image"
)

// FuzzRequestDecoding posts arbitrary bodies, as JSON and as protobuf, to
// every unary procedure: the server must answer with a client error (bad
// input, not found, refused), never an internal one, and never panic.
func FuzzRequestDecoding(f *testing.F) {
	for _, seed := range []string{`{}`, `{"id":"sha512-00"}`, `{"name":{"name":"a","labels":{"x":"y"}}}`, `{"pod":"x","graceSeconds":-1}`, "\x0a\x03abc", `{"ref":""}`, `[`, ``} {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(1))
	}
	store, err := image.Open(filepath.Join(f.TempDir(), "images"), image.Options{})
	if err != nil {
		f.Fatal(err)
	}
	handler := (&Server{Version: "fuzz", Images: store}).Handler()
	procedures := []string{
		"/kurma.v1.ImageService/List", "/kurma.v1.ImageService/Get", "/kurma.v1.ImageService/Remove", "/kurma.v1.ImageService/GC",
		"/kurma.v1.PodService/Create", "/kurma.v1.PodService/List", "/kurma.v1.PodService/Get", "/kurma.v1.PodService/Stop", "/kurma.v1.PodService/Remove",
		"/kurma.v1.SystemService/Info",
	}
	f.Fuzz(func(t *testing.T, body string, kind uint8) {
		ctype := "application/json"
		if kind%2 == 1 {
			ctype = "application/proto"
		}
		for _, p := range procedures {
			req := httptest.NewRequest(http.MethodPost, p, bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", ctype)
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
				out, _ := io.ReadAll(rec.Body)
				t.Fatalf("%s %s %q: %d %s", p, ctype, body, rec.Code, out)
			}
		}
	})
	_ = connect.CodeInternal
}
