package netboot

import (
	"net/http"
	"os"
	"time"
)

// Handler serves the files under dir over HTTP, GET and HEAD only; no
// path, symbolic links included, reaches outside dir. logf, if not nil,
// is told of each request.
func Handler(dir string, logf func(format string, a ...any)) (http.Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(root.FS())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		files.ServeHTTP(rw, r)
		if logf != nil {
			logf("%s %s %s: %d, %d bytes in %s", r.RemoteAddr, r.Method, r.URL.Path, rw.status, rw.n, time.Since(start).Round(time.Millisecond))
		}
	}), nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}
