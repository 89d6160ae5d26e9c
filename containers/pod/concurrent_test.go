package pod_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kurmaos/kurma/containers/pod"
)

// TestManyPodsConcurrently creates 50 pods at once (mount propagation and
// pivot_root must not interfere), lets them run, removes them all at
// once, and checks that no mount, cgroup, process or file is left.
func TestManyPodsConcurrently(t *testing.T) {
	e := newEnv(t)
	const n = 50
	pods := make([]*pod.Pod, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := e.m.Create(ctx, pod.CreateOptions{Images: []pod.ImageApp{e.sh("a", "echo $AC_APP_NAME; exec sleep 100"), e.sh("b", "exec sleep 100")}})
			if err != nil {
				errs <- err
				return
			}
			pods[i] = p
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for _, p := range pods {
		if st := p.Status(); st.State != pod.Running {
			t.Errorf("pod %s: %s", p.UUID(), st.State)
		}
	}
	// Nothing of the pods is visible in the host's mount table.
	if m := append(mountsUnder(t, e.opts.Dir), mountsUnder(t, e.opts.RunDir)...); len(m) > 0 {
		t.Errorf("pod mounts visible on the host: %v", m[:min(5, len(m))])
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := e.m.Remove(ctx, pods[i].UUID()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if left := podsLeft(t, e); len(left) > 0 {
		t.Errorf("left in the pods directory: %v", left)
	}
	if m := append(mountsUnder(t, e.opts.Dir), mountsUnder(t, e.opts.RunDir)...); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	uuids := map[string]bool{}
	for _, p := range pods {
		uuids[p.UUID()] = true
		if p.Cgroup().Exists() {
			t.Errorf("cgroup left: %v", p.Cgroup().Dirs)
		}
	}
	// No process anywhere is in one of the pods' cgroups.
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, f := range procs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for id := range uuids {
			if strings.Contains(string(data), id) {
				t.Errorf("process %s is still in pod %s's cgroup", filepath.Dir(f), id)
			}
		}
	}
}
