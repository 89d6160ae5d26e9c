package netboot

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tree makes a PXE tree with a config file, a separate config directory
// and a file outside both, linked from the tree.
func tree(t *testing.T) (dir, configDir string) {
	t.Helper()
	dir, configDir = t.TempDir(), t.TempDir()
	files := map[string]string{
		filepath.Join(dir, "boot.ipxe"):                    "#!ipxe\n",
		filepath.Join(dir, "config", "52:54:00:12:34:56"):  "hostname: in-tree\n",
		filepath.Join(configDir, "52:54:00:12:34:56"):      "hostname: apart\n",
		filepath.Join(filepath.Dir(dir), "outside-secret"): "secret",
	}
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(filepath.Dir(dir), "outside-secret"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return dir, configDir
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHandler(t *testing.T) {
	dir, configDir := tree(t)
	tests := []struct {
		name, configDir, method, path string
		status                        int
		body                          string
	}{
		{"script", "", "GET", "/boot.ipxe", 200, "#!ipxe\n"},
		{"config in the tree", "", "GET", "/config/52:54:00:12:34:56", 200, "hostname: in-tree\n"},
		{"config apart", configDir, "GET", "/config/52:54:00:12:34:56", 200, "hostname: apart\n"},
		{"tree beside configs apart", configDir, "GET", "/boot.ipxe", 200, "#!ipxe\n"},
		{"missing", "", "GET", "/config/52:54:00:00:00:00", 404, ""},
		{"head", "", "HEAD", "/boot.ipxe", 200, ""},
		{"read-only", "", "PUT", "/boot.ipxe", 405, ""},
		{"no escape by ..", "", "GET", "/../outside-secret", 404, ""},
		{"no escape by a symbolic link", "", "GET", "/link", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ConfigHandler(dir, tc.configDir, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			status, body := get(t, tc.method, srv.URL+tc.path)
			if tc.status == 0 { // any refusal
				if status == 200 || body == "secret" {
					t.Errorf("%s %s: %d %q, want a refusal", tc.method, tc.path, status, body)
				}
				return
			}
			if status != tc.status || (tc.body != "" && body != tc.body) {
				t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, status, body, tc.status, tc.body)
			}
		})
	}
}

func TestServe(t *testing.T) {
	dir, _ := tree(t)
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Options{Dir: dir, TFTP: "127.0.0.1:0", HTTP: "127.0.0.1:0", Logf: t.Logf,
			Ready: func(tftp, http net.Addr) { addrs <- [2]net.Addr{tftp, http} }})
	}()
	var a [2]net.Addr
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	data, _, err := tftpGet(t, a[0], "boot.ipxe", nil, false)
	if err != nil || string(data) != "#!ipxe\n" {
		t.Errorf("TFTP: %q, %v", data, err)
	}
	if status, body := get(t, "GET", "http://"+a[1].String()+"/boot.ipxe"); status != 200 || body != "#!ipxe\n" {
		t.Errorf("HTTP: %d %q", status, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if err := Serve(context.Background(), Options{Dir: dir}); err == nil {
		t.Error("Serve with no address succeeded")
	}
}
