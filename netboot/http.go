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
	return ConfigHandler(dir, "", logf)
}

// ConfigHandler is Handler serving /config/ from configDir instead of
// dir/config, so that per-machine configurations can live apart from
// the PXE tree that builds replace. An empty configDir is dir/config.
func ConfigHandler(dir, configDir string, logf func(format string, a ...any)) (http.Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	var files http.Handler = http.FileServerFS(root.FS())
	if configDir != "" {
		croot, err := os.OpenRoot(configDir)
		if err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("/", files)
		mux.Handle("/config/", http.StripPrefix("/config", http.FileServerFS(croot.FS())))
		files = mux
	}
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
