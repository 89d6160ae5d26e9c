package metadata

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"
)

func newTestService(t *testing.T) (*Service, *httptest.Server) {
	t.Helper()
	key, err := LoadKey(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	s.Register("tok", &Pod{
		UUID:        "6733c4a4-3a2b-4a38-8f0d-1b0b4a5d6e7f",
		Manifest:    []byte(`{"acKind":"PodManifest"}`),
		Annotations: types.Annotations{{Name: "a", Value: "b"}},
		Apps:        map[string]App{"web": {ImageID: "sha512-abc", ImageManifest: []byte(`{"name":"x"}`), Annotations: nil}},
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func TestEndpoints(t *testing.T) {
	_, srv := newTestService(t)
	base := srv.URL + "/tok/acMetadata/v1/"
	for _, c := range []struct {
		path, ctype, body string
		code              int
	}{
		{"pod/uuid", Text, "6733c4a4-3a2b-4a38-8f0d-1b0b4a5d6e7f", 200},
		{"pod/manifest", JSON, `{"acKind":"PodManifest"}`, 200},
		{"pod/annotations", JSON, `[{"name":"a","value":"b"}]`, 200},
		{"apps/web/image/id", Text, "sha512-abc", 200},
		{"apps/web/image/manifest", JSON, `{"name":"x"}`, 200},
		{"apps/web/annotations", JSON, `null`, 200},
		{"apps/nope/image/id", "", "", 404},
		{"pod/nothing", "", "", 404},
	} {
		resp, err := http.Get(base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s: status %d, want %d", c.path, resp.StatusCode, c.code)
			continue
		}
		if c.code != 200 {
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: content type %q, want %q", c.path, got, c.ctype)
		}
		if string(body) != c.body {
			t.Errorf("%s: body %q, want %q", c.path, body, c.body)
		}
	}
	resp, err := http.Get(srv.URL + "/wrong-token/acMetadata/v1/pod/uuid")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown token: status %d, want 401", resp.StatusCode)
	}
}

func TestSignVerify(t *testing.T) {
	s, srv := newTestService(t)
	base := srv.URL + "/tok/acMetadata/v1/pod/hmac/"
	post := func(what string, form url.Values) (int, string, string) {
		resp, err := http.PostForm(base+what, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	code, ctype, sig := post("sign", url.Values{"content": {"Old MacDonald"}})
	if code != 200 || ctype != Text || sig == "" {
		t.Fatalf("sign: %d %q %q", code, ctype, sig)
	}
	if !s.Verify("6733c4a4-3a2b-4a38-8f0d-1b0b4a5d6e7f", []byte("Old MacDonald"), sig) {
		t.Error("the signature does not verify")
	}
	uuid := "6733c4a4-3a2b-4a38-8f0d-1b0b4a5d6e7f"
	for _, c := range []struct {
		name              string
		content, id, sign string
		want              int
	}{
		{"good", "Old MacDonald", uuid, sig, 200},
		{"other content", "Old MacDonalds", uuid, sig, 403},
		{"other pod", "Old MacDonald", "00000000-3a2b-4a38-8f0d-1b0b4a5d6e7f", sig, 403},
		{"not base64", "Old MacDonald", uuid, "%%%", 403},
	} {
		code, ctype, _ := post("verify", url.Values{"content": {c.content}, "uuid": {c.id}, "signature": {c.sign}})
		if code != c.want || ctype != Text {
			t.Errorf("verify %s: %d %q, want %d %q", c.name, code, ctype, c.want, Text)
		}
	}
	// Another key does not verify this one's signatures.
	other, err := New([]byte(strings.Repeat("k", 64)))
	if err != nil {
		t.Fatal(err)
	}
	if other.Verify(uuid, []byte("Old MacDonald"), sig) {
		t.Error("a signature verifies under another key")
	}
}

func TestLoadKeyKeeps(t *testing.T) {
	f := filepath.Join(t.TempDir(), "key")
	a, err := LoadKey(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadKey(f)
	if err != nil || string(a) != string(b) || len(a) != 64 {
		t.Fatalf("key not kept: %v", err)
	}
	st, err := os.Stat(f)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", st.Mode(), err)
	}
	if err := os.WriteFile(f, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(f); err == nil {
		t.Error("a short key was accepted")
	}
	var ann types.Annotations
	if err := json.Unmarshal([]byte("null"), &ann); err != nil || ann != nil {
		t.Fatal("annotations of null")
	}
}
