package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"github.com/appc/spec/discovery"
	"github.com/appc/spec/schema/types"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/kurmaos/kurma/containers/aci"
)

// ParseName parses an image reference as appc writes it:
// "example.com/app:1.0.0,channel=beta,os=linux".
func ParseName(ref string) (string, types.Labels, error) {
	app, err := discovery.NewAppFromString(ref)
	if err != nil {
		return "", nil, err
	}
	labels, err := types.LabelsFromMap(app.Labels)
	if err != nil {
		return "", nil, err
	}
	return app.Name.String(), labels, nil
}

// withDefaults adds version "latest" and this host's os and arch where
// labels do not say.
func withDefaults(labels types.Labels) (types.Labels, error) {
	os, arch, err := aci.HostPlatform()
	if err != nil {
		return nil, err
	}
	out := append(types.Labels(nil), labels...)
	for _, d := range [][2]string{{"version", "latest"}, {"os", os}, {"arch", arch}} {
		if _, ok := out.Get(d[0]); !ok {
			out = append(out, types.Label{Name: types.ACIdentifier(d[0]), Value: d[1]})
		}
	}
	return out, nil
}

type endpoint struct {
	aci, asc *url.URL
}

// maxMetaBytes caps a discovery page.
const maxMetaBytes = 1 << 20

// discover follows appc discovery: it asks https://<prefix>?ac-discovery=1
// for the name and then each shorter prefix, and returns the endpoints of
// the first page whose ac-discovery meta tags render completely.
func (f *Fetcher) discover(ctx context.Context, name string, labels types.Labels, opts Options) ([]endpoint, error) {
	vars := map[string]string{"name": name}
	for _, l := range labels {
		vars[l.Name.String()] = l.Value
	}
	var errs []error
	parts := strings.Split(name, "/")
	for end := len(parts); end > 0; end-- {
		prefix := strings.Join(parts[:end], "/")
		metas, err := f.metaTags(ctx, prefix, opts)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		var eps []endpoint
		for _, m := range metas {
			if m.name != "ac-discovery" || !strings.HasPrefix(name, m.prefix) {
				continue
			}
			aciURL, ok1 := render(m.template, vars, "aci")
			ascURL, ok2 := render(m.template, vars, "aci.asc")
			if ok1 && ok2 {
				eps = append(eps, endpoint{aciURL, ascURL})
			}
		}
		if len(eps) > 0 {
			return eps, nil
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("discovery: %w: no ac-discovery meta tag for this name and labels", ErrNotFound)
	}
	return nil, fmt.Errorf("discovery: %w", errors.Join(errs...))
}

type meta struct {
	name, prefix, template string
}

// metaTags fetches one discovery page: HTTPS, then HTTP only if allowed.
func (f *Fetcher) metaTags(ctx context.Context, prefix string, opts Options) ([]meta, error) {
	schemes := []string{"https"}
	if opts.Insecure&InsecureAllowHTTP != 0 {
		schemes = append(schemes, "http")
	}
	var errs []error
	for _, scheme := range schemes {
		u, err := url.Parse(scheme + "://" + prefix + "?ac-discovery=1")
		if err != nil {
			return nil, err
		}
		var page strings.Builder
		if err := f.get(ctx, u, &page, maxMetaBytes, func(*url.URL) error { return nil }, Options{Insecure: opts.Insecure}); err != nil {
			errs = append(errs, err)
			continue
		}
		return parseMeta(strings.NewReader(page.String())), nil
	}
	return nil, errors.Join(errs...)
}

// parseMeta returns the ac-* meta tags of an HTML page.
func parseMeta(r io.Reader) []meta {
	var metas []meta
	z := html.NewTokenizer(r)
	for {
		switch z.Next() {
		case html.ErrorToken:
			return metas
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.DataAtom != atom.Meta {
				continue
			}
			var m meta
			for _, a := range tok.Attr {
				switch a.Key {
				case "name":
					m.name = a.Val
				case "content":
					fields := strings.Fields(a.Val)
					if len(fields) == 2 {
						m.prefix, m.template = fields[0], fields[1]
					}
				}
			}
			if strings.HasPrefix(m.name, "ac-") && m.prefix != "" {
				metas = append(metas, m)
			}
		}
	}
}

var templateVar = regexp.MustCompile(`\{[^{}]*\}`)

// render fills a discovery template; it fails if a variable is left or
// the result is not an absolute http(s) URL.
func render(tpl string, vars map[string]string, ext string) (*url.URL, bool) {
	ok := true
	s := templateVar.ReplaceAllStringFunc(tpl, func(v string) string {
		key := v[1 : len(v)-1]
		if key == "ext" {
			return ext
		}
		val, found := vars[key]
		if !found {
			ok = false
		}
		return val
	})
	if !ok {
		return nil, false
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, false
	}
	return u, true
}
