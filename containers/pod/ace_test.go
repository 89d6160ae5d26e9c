package pod_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/kurmaos/kurma/containers/aci/acitest"
	"github.com/kurmaos/kurma/containers/pod"
)

// TestACEValidator runs the appc ACE validator (github.com/appc/spec/ace,
// built from the module) as the spec's two-app pod with an empty volume
// "database": each of its four stages must print OK.
func TestACEValidator(t *testing.T) {
	e := newEnv(t)
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	aceDir := filepath.Join(strings.TrimSpace(string(out)), "github.com/appc/spec@v0.8.11/ace")
	bin := filepath.Join(t.TempDir(), "ace-validator")
	build := exec.Command("go", "build", "-o", bin, "github.com/appc/spec/ace")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the ACE validator: %v\n%s", err, out)
	}
	validator, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	osName, arch := runtime.GOOS, runtime.GOARCH
	var apps schema.AppList
	for _, which := range []string{"main", "sidekick"} {
		tmpl, err := os.ReadFile(filepath.Join(aceDir, "image_manifest_"+which+".json.in"))
		if err != nil {
			t.Fatal(err)
		}
		manifest := strings.NewReplacer("@ACI_OS@", osName, "@ACI_ARCH@", arch).Replace(string(tmpl))
		exe := acitest.File("rootfs/ace-validator", "")
		exe.Body, exe.Size, exe.Mode = validator, int64(len(validator)), 0o755
		img := e.importImage(acitest.Tar(
			acitest.File("manifest", manifest), acitest.Dir("rootfs"), exe,
			acitest.Dir("rootfs/opt"), acitest.Dir("rootfs/opt/acvalidator"),
		))
		name := "ace-validator-" + which
		apps = append(apps, schema.RuntimeApp{
			Name:   types.ACName(name),
			Image:  schema.RuntimeImage{ID: hash(t, img.ID)},
			Mounts: []schema.Mount{{Volume: "database", Path: "/db"}},
		})
	}
	mode, zero := "0755", 0
	pm := &schema.PodManifest{
		ACKind: schema.PodManifestKind, ACVersion: schema.AppContainerVersion, Apps: apps,
		Volumes:     []types.Volume{{Name: "database", Kind: "empty", Mode: &mode, UID: &zero, GID: &zero}},
		Annotations: types.Annotations{{Name: "pod-annotation", Value: "yes"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := e.m.Create(ctx, pod.CreateOptions{Manifest: pm})
	if err != nil {
		t.Fatal(err)
	}
	st := wait(t, p)
	mainLog, sidekickLog := logOf(p, "ace-validator-main"), logOf(p, "ace-validator-sidekick")
	t.Logf("main:\n%s\nsidekick:\n%s", mainLog, sidekickLog)
	codes := exitCodes(st)
	if st.State != pod.Exited || codes["ace-validator-main"] != 0 || codes["ace-validator-sidekick"] != 0 {
		t.Errorf("status %s, exit codes %v, want exited with 0 and 0", st.State, codes)
	}
	for _, want := range []string{"prestart OK", "main OK", "poststop OK"} {
		if !strings.Contains(mainLog, want+"\n") {
			t.Errorf("main's log lacks %q", want)
		}
	}
	if !strings.Contains(sidekickLog, "sidekick OK\n") {
		t.Error(`sidekick's log lacks "sidekick OK"`)
	}
	// The validator's images carry a memory isolator: it is enforced
	// and reported in the status, never dropped silently.
	found := false
	for _, iso := range st.Isolators {
		if iso.Name == "resource/memory" {
			found = true
			if iso.Status != "enforced" {
				t.Errorf("resource/memory of %s: %s (%s), want enforced", iso.App, iso.Status, iso.Message)
			}
		}
	}
	if !found {
		t.Errorf("isolators %+v: the validator's memory isolator is not reported", st.Isolators)
	}
}
