package config

import (
	"fmt"
	"strings"
)

// problem is a rule broken by the merged configuration: the value at path
// is wrong, and the value at drop is left out to mend it.
type problem struct {
	path, msg, drop string
}

type problems []problem

func (ps *problems) add(path, drop, format string, args ...any) {
	*ps = append(*ps, problem{path: path, drop: drop, msg: fmt.Sprintf(format, args...)})
}

// validate checks the rules that span fields, entries and layers.
func validate(c *Config) []problem {
	var ps problems
	for i, ifc := range c.Network.Interfaces {
		p := joinIndex("network.interfaces", i)
		if ifc.Name == "" && ifc.MAC == "" {
			ps.add(p, p, "matches no link: give a name, a glob or a mac; entry ignored")
		}
	}
	usedBy := map[Usage]int{}
	for i, d := range c.Disks {
		p := joinIndex("disks", i)
		var by []string
		for _, s := range []struct{ name, v string }{{"path", d.Path}, {"label", d.Label}, {"uuid", d.UUID}} {
			if s.v != "" {
				by = append(by, s.name)
			}
		}
		if len(by) != 1 {
			what := "none"
			if len(by) > 1 {
				what = strings.Join(by, " and ")
			}
			ps.add(p, p, "name the device by one of path, label or uuid (it has %s); entry ignored", what)
			continue
		}
		for j, u := range d.Usages {
			up := joinIndex(p+".usages", j)
			if first, ok := usedBy[u]; ok {
				ps.add(up, up, "%q is already on disks[%d]; a usage is on one disk", u, first)
				continue
			}
			usedBy[u] = i
		}
	}
	for i, ct := range c.Bootstrap.Containers {
		p := joinIndex("bootstrap.containers", i)
		if ct.Enabled && ct.Image == "" {
			ps.add(p+".image", p, "missing: an enabled container needs an image; container %q ignored", ct.Name)
		}
		if ct.Kind == KindRunToCompletion && ct.Restart.Policy == RestartAlways {
			ps.add(p+".restart.policy", p+".restart.policy", "a run-to-completion container cannot restart always (use on-failure or never)")
		}
		if ct.Restart.Backoff > ct.Restart.MaxBackoff {
			ps.add(p+".restart.backoff", p+".restart.backoff", "%s is longer than max_backoff (%s)", ct.Restart.Backoff, ct.Restart.MaxBackoff)
		}
		seen := map[string]int{}
		for j, f := range ct.Files {
			fp := joinIndex(p+".files", j)
			if f.Path == "" {
				ps.add(fp, fp, "path is missing; file ignored")
			} else if k, dup := seen[f.Path]; dup {
				ps.add(fp+".path", fp, "%q is already files[%d]; file ignored", f.Path, k)
			}
			seen[f.Path] = j
		}
		for j, v := range ct.Volumes {
			vp := joinIndex(p+".volumes", j)
			switch {
			case v.Name == "" || v.Path == "":
				ps.add(vp, vp, "a volume needs a name and a path; volume ignored")
			case v.Kind == "host" && v.Source == "":
				ps.add(vp+".source", vp, "missing: a host volume needs the host directory; volume ignored")
			case v.Kind != "host" && v.Source != "":
				ps.add(vp+".source", vp+".source", "only a host volume has a source")
			}
		}
	}
	if u := c.Pods.UserNamespaces; u.Ranges < 0 {
		ps.add("pods.user_namespaces.ranges", "pods.user_namespaces", "%d is negative; pods in user namespaces are refused", u.Ranges)
	} else if u.Ranges > 0 && u.FirstID < 65536 {
		ps.add("pods.user_namespaces.first_id", "pods.user_namespaces", "%d is below 65536, the host's own users; pods in user namespaces are refused", u.FirstID)
	} else if last := int64(u.FirstID) + int64(u.Ranges)*65536 - 1; u.Ranges > 0 && last > 4294967294 {
		ps.add("pods.user_namespaces.ranges", "pods.user_namespaces", "%d ranges of 65536 IDs from %d end at %d, past the last ID (4294967294); pods in user namespaces are refused", u.Ranges, u.FirstID, last)
	}
	if r := c.API.Remote; r.Address != "" && (r.TLS.Cert == "" || r.TLS.Key == "" || r.TLS.CA == "") {
		ps.add("api.remote.address", "api.remote.address", "remote access needs mutual TLS: set api.remote.tls.cert, key and ca; the remote listener stays off")
	}
	for i, d := range c.Datasources {
		p := joinIndex("datasources", i)
		switch d.Kind {
		case "":
			ps.add(p, p, "kind is missing (url, nocloud or configdrive); entry ignored")
			continue
		case DatasourceURL:
			if d.Enabled && d.URL == "" {
				ps.add(p+".url", p, "missing: an enabled url datasource needs a URL; datasource ignored")
			}
			for _, f := range []struct{ name, v string }{{"label", d.Label}, {"path", d.Path}} {
				if f.v != "" {
					ps.add(p+"."+f.name, p+"."+f.name, "applies to the nocloud and configdrive kinds only")
				}
			}
		default:
			if d.URL != "" {
				ps.add(p+".url", p+".url", "applies to the url kind only")
			}
		}
	}
	return ps
}
