package pod_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kurmaos/kurma/containers/pod"
)

func TestUserGroup(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name, user, group string
		groups            []int
		want              string // id -u, id -g, id -G
	}{
		{"names", "kurmauser", "kurmagroup", nil, "1000 2000 2000"},
		{"numbers", "1234", "4321", nil, "1234 4321 4321"},
		{"paths", "/opt/owned", "/opt/owned", nil, "3000 3001 3001"},
		{"root", "root", "root", nil, "0 0 0"},
		{"supplementary", "kurmauser", "kurmagroup", []int{5, 77}, "1000 2000 2000 5 77"},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := e.sh("app", "echo $(id -u) $(id -g) $(id -G)")
			app.User, app.Group, app.SupplementaryGIDs = c.user, c.group, c.groups
			p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{app}})
			if got := strings.TrimSpace(logOf(p, "app")); st.State != pod.Exited || got != c.want {
				t.Fatalf("ids %q (status %+v), want %q", got, st, c.want)
			}
		})
	}
	for _, c := range []struct{ name, user, group, want string }{
		{"unknown user", "nosuchuser", "0", `user "nosuchuser"`},
		{"unknown group", "0", "nosuchgroup", `group "nosuchgroup"`},
		{"missing path", "/no/such/file", "0", `user "/no/such/file"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := e.sh("app", "echo ran")
			app.User, app.Group = c.user, c.group
			p, err := e.m.Create(context.Background(), pod.CreateOptions{Images: []pod.ImageApp{app}})
			if !errors.Is(err, pod.ErrFailed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("create: %v, want ErrFailed naming %s", err, c.want)
			}
			st := p.Status()
			if st.State != pod.Failed || !strings.Contains(st.Error, c.want) {
				t.Fatalf("status %+v, want failed naming %s", st, c.want)
			}
			if strings.Contains(logOf(p, "app"), "ran") {
				t.Error("the app ran")
			}
		})
	}
}

func TestWorkingDirectory(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ dir, want string }{{"", "/"}, {"/opt", "/opt"}, {"/home/user", "/home/user"}} {
		app := e.sh("app", "pwd")
		app.WorkingDirectory = c.dir
		p, st := e.run(pod.CreateOptions{Images: []pod.ImageApp{app}})
		if got := strings.TrimSpace(logOf(p, "app")); st.State != pod.Exited || got != c.want {
			t.Errorf("working directory %q: pwd %q (%s), want %q", c.dir, got, st.State, c.want)
		}
	}
	// A missing directory, and magic links to the init's descriptors
	// (THREATS.md 23), fail the pod.
	for _, dir := range []string{"/no/such/dir", "/proc/self/fd/3", "/proc/self/fd/7", "/proc/1/root"} {
		app := e.sh("app", "echo ran")
		app.WorkingDirectory = dir
		p, err := e.m.Create(context.Background(), pod.CreateOptions{Images: []pod.ImageApp{app}})
		if !errors.Is(err, pod.ErrFailed) || !strings.Contains(err.Error(), "working directory") {
			t.Errorf("working directory %s: %v, want ErrFailed naming the working directory", dir, err)
		}
		if p != nil && strings.Contains(logOf(p, "app"), "ran") {
			t.Errorf("working directory %s: the app ran", dir)
		}
	}
}
