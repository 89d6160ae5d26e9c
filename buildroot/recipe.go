package buildroot

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed recipes/*.yaml
var recipeFS embed.FS

// ErrUnknownRecipe is returned for a recipe name with no definition.
var ErrUnknownRecipe = errors.New("unknown recipe")

// A Recipe says how to assemble one tree.
type Recipe struct {
	Name        string `yaml:"-"`
	Description string `yaml:"description"`
	// Packages are the Debian packages to download and unpack; every
	// file the recipe takes comes from one of them.
	Packages []string `yaml:"packages"`
	// Binaries are ELF programs (paths in the packages) copied with the
	// shared libraries and the interpreter they need.
	Binaries []string `yaml:"binaries"`
	// Files are copied as they are.
	Files []string `yaml:"files"`
	// Symlinks are made in the tree: path -> target.
	Symlinks map[string]string `yaml:"symlinks"`
	// Go are Go programs built static (CGO_ENABLED=0) into the tree:
	// path in the tree -> package path ("./cmd/kurma").
	Go map[string]string `yaml:"go"`
	// Dirs are empty directories the tree needs (mount points).
	Dirs []string `yaml:"dirs"`
	// BusyboxApplets, when set, is the path of a busybox of the tree:
	// each applet it lists gets a symlink to it beside it.
	BusyboxApplets string `yaml:"busybox_applets"`
	// FilesData are small files written into the tree: path -> contents.
	FilesData map[string]string `yaml:"files_data"`
	// Image, when set, makes the tree an ACI with this manifest.
	Image *Image `yaml:"image"`
}

// Image is the part of an ACI's manifest a recipe gives.
type Image struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Exec        []string          `yaml:"exec"`
	User        string            `yaml:"user"`
	Group       string            `yaml:"group"`
	WorkingDir  string            `yaml:"workingDirectory"`
	Environment map[string]string `yaml:"environment"`
	MountPoints []MountPoint      `yaml:"mountPoints"`
	Ports       []Port            `yaml:"ports"`
	Annotations map[string]string `yaml:"annotations"`
}

// MountPoint is an appc mount point of the image's app.
type MountPoint struct {
	Name     string `yaml:"name"`
	Path     string `yaml:"path"`
	ReadOnly bool   `yaml:"readOnly"`
}

// Port is an appc port of the image's app.
type Port struct {
	Name     string `yaml:"name"`
	Protocol string `yaml:"protocol"`
	Port     int    `yaml:"port"`
}

// LoadRecipe returns the named recipe built into Kurma.
func LoadRecipe(name string) (*Recipe, error) {
	data, err := recipeFS.ReadFile("recipes/" + name + ".yaml")
	if errors.Is(err, fs.ErrNotExist) || strings.ContainsAny(name, "/.") || name == "" {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownRecipe, name, strings.Join(RecipeNames(), ", "))
	}
	if err != nil {
		return nil, err
	}
	return ParseRecipe(name, data)
}

// ParseRecipe reads a recipe definition; unknown keys are errors.
func ParseRecipe(name string, data []byte) (*Recipe, error) {
	var r Recipe
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("recipe %s: %w", name, err)
	}
	r.Name = name
	paths := append(append(append([]string{}, r.Binaries...), r.Files...), r.Dirs...)
	for p := range r.FilesData {
		paths = append(paths, p)
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("recipe %s: %q is not an absolute path", name, p)
		}
	}
	if len(r.Binaries)+len(r.Files) > 0 && len(r.Packages) == 0 {
		return nil, fmt.Errorf("recipe %s: binaries and files come from packages, and it names none", name)
	}
	return &r, nil
}

// RecipeNames lists the recipes built into Kurma, sorted.
func RecipeNames() []string {
	entries, _ := recipeFS.ReadDir("recipes") // embedded: cannot fail
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}
