package config

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestDefaultsValid(t *testing.T) {
	_, errs := defaults()
	if len(errs) > 0 {
		t.Fatal(errStrings(errs))
	}
	eff := mergeOK(t)
	if eff.Config.Hostname != "" || eff.Config.Shutdown != "reboot" || len(eff.Config.Datasources) != 2 || !eff.Config.Datasources[0].Enabled {
		t.Errorf("defaults = %+v", eff.Config)
	}
}

// TestExamples loads every configuration of examples/ as the boot would,
// over the defaults, and requires it to be valid and to render.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if errs := Validate(f); len(errs) > 0 {
				t.Fatal(errStrings(errs))
			}
			l, _ := ReadFile(LayerInitrd, f)
			var b bytes.Buffer
			if err := mergeOK(t, l).Show(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "# initrd "+f+":") {
				t.Errorf("show names no value of %s:\n%s", f, b.String())
			}
		})
	}
}

// TestDocsYAML validates every YAML block of docs/config.md and
// docs/bootstrap.md.
func TestDocsYAML(t *testing.T) {
	for _, name := range []string{"config.md", "bootstrap.md"} {
		doc, err := os.ReadFile("../docs/" + name)
		if err != nil {
			t.Fatal(err)
		}
		blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
		if len(blocks) < 1 {
			t.Fatalf("docs/%s: found no YAML block", name)
		}
		for i, b := range blocks {
			// Blocks inside a list item are indented.
			text := regexp.MustCompile("(?m)^  ").ReplaceAllString(b[1], "")
			if !strings.HasPrefix(b[1], "  ") {
				text = b[1]
			}
			if errs := ValidateBytes("docs/"+name+" block "+strconv.Itoa(i+1), []byte(text)); len(errs) > 0 {
				t.Errorf("docs/%s block %d:\n%s\n%s", name, i+1, text, errStrings(errs))
			}
		}
	}
}

// TestDocsNameEveryKey checks that the reference names every key of the
// schema.
func TestDocsNameEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range CmdlineKeys() {
		k = strings.TrimPrefix(k, "kurma.")
		last := k[strings.LastIndexAny(k, ".")+1:]
		if last == "NAME" {
			continue
		}
		if !strings.Contains(string(doc), "`"+last) && !strings.Contains(string(doc), "."+last+"`") {
			t.Errorf("docs/config.md does not name %s", k)
		}
	}
}
