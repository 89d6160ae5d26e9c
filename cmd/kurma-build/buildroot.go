package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kurmaos/kurma/buildroot"
)

func runBuildroot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("buildroot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		recipe  = fs.String("recipe", "", "recipe: "+strings.Join(buildroot.RecipeNames(), ", "))
		out     = fs.String("o", "", "the tree to write (replaced)")
		aci     = fs.String("aci", "", "also pack the tree as this ACI (the recipe must have an image)")
		cache   = fs.String("cache", "build/buildroot/debs", "where Debian packages are downloaded and unpacked")
		module  = fs.String("module", ".", "the Kurma module, for the recipe's Go programs")
		version = fs.String("version", "dev", "the image's version label")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *recipe == "" || *out == "" {
		return fmt.Errorf("buildroot: -recipe and -o are required")
	}
	r, err := buildroot.LoadRecipe(*recipe)
	if err != nil {
		return err
	}
	pkgs, err := buildroot.FetchPackages(ctx, *cache, r.Packages)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(*out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	paths, err := buildroot.Assemble(ctx, r, pkgs, *module, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d paths from %d packages (recipe %s)\n", *out, len(paths), len(pkgs), r.Name)
	if *aci == "" {
		return nil
	}
	if r.Image == nil {
		return fmt.Errorf("buildroot: recipe %s makes no image", r.Name)
	}
	m, err := buildroot.Manifest(r.Image, *version, pkgs)
	if err != nil {
		return err
	}
	f, err := os.Create(*aci + ".tmp")
	if err != nil {
		return err
	}
	err = buildroot.PackACI(*out, m, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(*aci+".tmp", *aci)
	}
	if err != nil {
		_ = os.Remove(*aci + ".tmp") // no partial image
		return err
	}
	fi, _ := os.Stat(*aci)
	fmt.Fprintf(stdout, "%s: %.1f MiB\n", *aci, float64(fi.Size())/(1<<20))
	return nil
}
