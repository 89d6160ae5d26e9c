package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/aci"
	"github.com/kurmaos/kurma/containers/trust"
)

// Config is the fixed configuration of a Fetcher.
type Config struct {
	// Proxy, when set, is the HTTP(S) proxy every request goes through.
	Proxy *url.URL
	// RootCAs verify HTTPS servers; nil means the system's roots.
	RootCAs *x509.CertPool
	// Allow is the whitelist of sources.
	Allow Whitelist
	// Trust holds the keys signatures are checked against.
	Trust *trust.Store
	// TempDir holds downloads while they are checked ("" is os.TempDir).
	// Files are unlinked as soon as they are created.
	TempDir string
	// Limits cap the downloads (MaxImageBytes caps an image file) and the
	// manifest read from them.
	Limits aci.Limits
	// DialContext, when set, replaces the dialer (a seam for tests).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Whitelist says which sources may be used. Local files are not subject
// to it.
type Whitelist struct {
	// Names are image name prefixes (at a "/" boundary); "*" allows all.
	Names []string
	// Hosts are URL hosts ("example.com" or "example.com:8443"); "*"
	// allows all.
	Hosts []string
}

// AllowsName reports whether an image name may be fetched by discovery.
func (w Whitelist) AllowsName(name string) bool {
	for _, p := range w.Names {
		if aci.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// AllowsURL reports whether a URL may be fetched directly.
func (w Whitelist) AllowsURL(u *url.URL) bool {
	for _, h := range w.Hosts {
		if h == "*" || strings.EqualFold(h, u.Host) || strings.EqualFold(h, u.Hostname()) && u.Port() == "" {
			return true
		}
	}
	return false
}

// Insecure options switch checks off, one by one.
type Insecure uint

const (
	// InsecureSkipSignature imports images without checking a signature.
	InsecureSkipSignature Insecure = 1 << iota
	// InsecureAllowHTTP allows plain HTTP for discovery and downloads.
	InsecureAllowHTTP
)

// Options qualify one fetch.
type Options struct {
	Insecure Insecure
	// Progress, when set, is called as downloads go.
	Progress func(Progress)
	// MaxBytes, when set, caps this download below Config.Limits (a
	// dependency's declared size).
	MaxBytes int64
}

// Progress reports a download. Total is -1 when the server did not say.
type Progress struct {
	URL         string
	Done, Total int64
}

// Errors of fetching, for errors.Is.
var (
	ErrNotAllowed = errors.New("source is not in the whitelist")
	ErrNotFound   = errors.New("image not found")
	ErrInsecure   = errors.New("plain HTTP is not allowed (use the insecure HTTP option)")
)

// Fetcher retrieves images. It is safe for concurrent use.
type Fetcher struct {
	cfg       Config
	transport *http.Transport
}

// New makes a Fetcher.
func New(cfg Config) (*Fetcher, error) {
	if cfg.Trust == nil {
		return nil, errors.New("fetch: no trust store")
	}
	dial := cfg.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	t := &http.Transport{
		DialContext:           dial,
		TLSClientConfig:       &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
	}
	if cfg.Proxy != nil {
		t.Proxy = http.ProxyURL(cfg.Proxy)
	}
	return &Fetcher{cfg: cfg, transport: t}, nil
}

// Download is a retrieved, checked image file. Close it when done.
type Download struct {
	// File holds the image, positioned at its start. It has no name on
	// disk any more.
	File *os.File
	// Source is where it came from (URL or path).
	Source string
	// Name is the image's name, as asked or as its manifest says.
	Name string
	// Signer is the key that signed it; nil if the check was skipped.
	Signer *openpgp.Entity
}

// Close closes (and so deletes) the file.
func (d *Download) Close() error { return d.File.Close() }

// Fetch retrieves ref: a path ("/x.aci", "./x.aci", "file:///x.aci"), an
// http(s) URL, or an image name with labels as appc writes them
// ("example.com/app:1.0.0,channel=beta"; the part after ":" is the
// version).
func (f *Fetcher) Fetch(ctx context.Context, ref string, opts Options) (*Download, error) {
	switch {
	case strings.HasPrefix(ref, "file://"):
		return f.FetchFile(ctx, strings.TrimPrefix(ref, "file://"), opts)
	case strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../"):
		return f.FetchFile(ctx, ref, opts)
	case strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://"):
		u, err := url.Parse(ref)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", ref, err)
		}
		return f.FetchURL(ctx, u, opts)
	}
	name, labels, err := ParseName(ref)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", ref, err)
	}
	return f.FetchName(ctx, name, labels, opts)
}

// FetchFile uses a local image file and the .asc file beside it.
func (f *Fetcher) FetchFile(ctx context.Context, path string, opts Options) (*Download, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	d := &Download{File: file, Source: path}
	var sig io.Reader
	if opts.Insecure&InsecureSkipSignature == 0 {
		asc, err := os.Open(path + ".asc")
		if err != nil {
			file.Close()
			return nil, fmt.Errorf("fetch %s: signature: %w (or skip the check with the insecure option)", path, err)
		}
		defer asc.Close()
		sig = io.LimitReader(asc, maxSigBytes)
	}
	if err := f.check(ctx, d, "", nil, sig); err != nil {
		file.Close()
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	return d, nil
}

// FetchURL downloads an image and url + ".asc". The URL's host must be
// whitelisted, and so must the host of every redirect.
func (f *Fetcher) FetchURL(ctx context.Context, u *url.URL, opts Options) (*Download, error) {
	allow := func(u *url.URL) error {
		if !f.cfg.Allow.AllowsURL(u) {
			return fmt.Errorf("%w: host %q", ErrNotAllowed, u.Host)
		}
		return nil
	}
	if err := allow(u); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	asc := *u
	asc.Path += ".asc"
	asc.RawPath = ""
	d, err := f.download(ctx, u, &asc, "", nil, allow, opts)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}
	return d, nil
}

// FetchName finds an image by discovery and downloads it. The name must
// be whitelisted. Labels default to version "latest" and this host's os
// and arch.
func (f *Fetcher) FetchName(ctx context.Context, name string, labels types.Labels, opts Options) (*Download, error) {
	if !f.cfg.Allow.AllowsName(name) {
		return nil, fmt.Errorf("fetch %s: %w", name, ErrNotAllowed)
	}
	labels, err := withDefaults(labels)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", name, err)
	}
	eps, err := f.discover(ctx, name, labels, opts)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", name, err)
	}
	delegated := func(*url.URL) error { return nil }
	var errs []error
	for _, ep := range eps {
		d, err := f.download(ctx, ep.aci, ep.asc, name, labels, delegated, opts)
		if err == nil {
			return d, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep.aci.Redacted(), err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("fetch %s: %w", name, errors.Join(errs...))
}

// maxSigBytes caps a signature file.
const maxSigBytes = 1 << 20

func (f *Fetcher) download(ctx context.Context, aciURL, ascURL *url.URL, name string, labels types.Labels, allow func(*url.URL) error, opts Options) (*Download, error) {
	tmp, err := os.CreateTemp(f.cfg.TempDir, "fetch-*.aci")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(tmp.Name()) // nameless from now on; the open file stays
	d := &Download{File: tmp, Source: aciURL.String()}
	max := f.cfg.Limits.MaxImageBytes
	if max <= 0 {
		max = aci.DefaultMaxImageBytes
	}
	if opts.MaxBytes > 0 && opts.MaxBytes < max {
		max = opts.MaxBytes
	}
	if err := f.get(ctx, aciURL, tmp, max, allow, opts); err != nil {
		tmp.Close()
		return nil, err
	}
	var sig io.Reader
	if opts.Insecure&InsecureSkipSignature == 0 {
		var buf strings.Builder
		if err := f.get(ctx, ascURL, &buf, maxSigBytes, allow, opts); err != nil {
			tmp.Close()
			return nil, fmt.Errorf("signature: %w (or skip the check with the insecure option)", err)
		}
		sig = strings.NewReader(buf.String())
	}
	if err := f.check(ctx, d, name, labels, sig); err != nil {
		tmp.Close()
		return nil, err
	}
	return d, nil
}

// check reads the manifest of d.File, matches it against the name and
// labels asked for (if any), and verifies the signature sig unless it is
// nil (the insecure option).
func (f *Fetcher) check(ctx context.Context, d *Download, name string, labels types.Labels, sig io.Reader) error {
	m, err := f.manifest(ctx, d.File)
	if err != nil {
		return err
	}
	if name != "" && m.Name.String() != name {
		return fmt.Errorf("image is named %q, not %q", m.Name, name)
	}
	if !aci.LabelsMatch(m, labels) {
		return fmt.Errorf("image labels %v do not match %v", m.Labels, labels)
	}
	d.Name = m.Name.String()
	if sig != nil {
		signer, err := f.cfg.Trust.Verify(d.Name, d.File, sig)
		if err != nil {
			return err
		}
		d.Signer = signer
	}
	_, err = d.File.Seek(0, io.SeekStart)
	return err
}

func (f *Fetcher) manifest(ctx context.Context, file *os.File) (*schema.ImageManifest, error) {
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	m, err := aci.ReadManifest(ctx, file, f.cfg.Limits)
	if err != nil {
		return nil, err
	}
	_, err = file.Seek(0, io.SeekStart)
	return m, err
}

// get downloads u into w, at most max bytes.
func (f *Fetcher) get(ctx context.Context, u *url.URL, w io.Writer, max int64, allow func(*url.URL) error, opts Options) error {
	resp, err := f.do(ctx, u, allow, opts)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("GET %s: %w (%s)", u.Redacted(), ErrNotFound, resp.Status)
		}
		return fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
	}
	if resp.ContentLength > max {
		return fmt.Errorf("GET %s: %w: %d bytes, limit %d", u.Redacted(), aci.ErrTooLarge, resp.ContentLength, max)
	}
	body := &progressReader{r: resp.Body, p: Progress{URL: u.Redacted(), Total: resp.ContentLength}, report: opts.Progress}
	n, err := io.Copy(w, io.LimitReader(body, max+1))
	body.flush()
	if err != nil {
		return fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	if n > max {
		return fmt.Errorf("GET %s: %w: more than %d bytes", u.Redacted(), aci.ErrTooLarge, max)
	}
	return nil
}

// do sends a GET, checking the scheme and, through allow, every URL it is
// redirected to.
func (f *Fetcher) do(ctx context.Context, u *url.URL, allow func(*url.URL) error, opts Options) (*http.Response, error) {
	checkURL := func(u *url.URL) error {
		switch {
		case u.Scheme == "http" && opts.Insecure&InsecureAllowHTTP == 0:
			return fmt.Errorf("%s: %w", u.Redacted(), ErrInsecure)
		case u.Scheme != "http" && u.Scheme != "https":
			return fmt.Errorf("%s: scheme %q is not HTTP(S)", u.Redacted(), u.Scheme)
		}
		return allow(u)
	}
	if err := checkURL(u); err != nil {
		return nil, err
	}
	client := &http.Client{
		Transport: f.transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return checkURL(req.URL)
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "kurma")
	return client.Do(req)
}

// progressReader reports progress every 1 MiB and at the end.
type progressReader struct {
	r        io.Reader
	p        Progress
	report   func(Progress)
	reported int64
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.Done += int64(n)
	if pr.report != nil && pr.p.Done-pr.reported >= 1<<20 {
		pr.flush()
	}
	return n, err
}

func (pr *progressReader) flush() {
	if pr.report != nil {
		pr.reported = pr.p.Done
		pr.report(pr.p)
	}
}
