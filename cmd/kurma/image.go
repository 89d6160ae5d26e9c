package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	kurmav1 "github.com/kurmaos/kurma/api/kurma/v1"
)

func (c *cli) imageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "image",
		Aliases: []string{"images"},
		Short:   "Manage the image store: fetch, import, list, rm, gc",
	}
	cmd.AddCommand(c.imageFetchCmd(), c.imageImportCmd(), c.imageListCmd(), c.imageRmCmd(), c.imageGCCmd())
	return cmd
}

func (c *cli) imageFetchCmd() *cobra.Command {
	var skipSig, allowHTTP bool
	cmd := &cobra.Command{
		Use:   "fetch NAME|URL",
		Short: "Fetch an image by name (appc discovery) or URL, with its dependencies",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			stream, err := api.images.Fetch(cmd.Context(), connect.NewRequest(&kurmav1.FetchImageRequest{
				Ref: args[0], InsecureSkipSignature: skipSig, InsecureAllowHttp: allowHTTP,
			}))
			if err != nil {
				return err
			}
			defer stream.Close()
			p := c.progress()
			var img *kurmav1.Image
			for stream.Receive() {
				switch ev := stream.Msg().Event.(type) {
				case *kurmav1.FetchImageResponse_Progress:
					p.update(ev.Progress.What, ev.Progress.Done, ev.Progress.Total)
				case *kurmav1.FetchImageResponse_Image:
					img = ev.Image
				}
			}
			p.done()
			if err := stream.Err(); err != nil {
				return err
			}
			if img == nil {
				return fmt.Errorf("fetch %s: the daemon sent no image", args[0])
			}
			return c.printImage(img)
		},
	}
	cmd.Flags().BoolVar(&skipSig, "insecure-skip-signature", false, "do not check the signature (when the configuration allows it)")
	cmd.Flags().BoolVar(&allowHTTP, "insecure-allow-http", false, "allow plain HTTP (when the configuration allows it)")
	return cmd
}

func (c *cli) imageImportCmd() *cobra.Command {
	var expectID string
	cmd := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Upload an ACI file (tar, gzip, bzip2, xz) into the store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			var r io.Reader = c.stdin
			var total int64
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil {
					total = fi.Size()
				}
				r = f
			}
			stream := api.images.Import(cmd.Context())
			if err := stream.Send(&kurmav1.ImportImageRequest{Part: &kurmav1.ImportImageRequest_Options{
				Options: &kurmav1.ImportOptions{ExpectedId: expectID, Source: "upload " + args[0]},
			}}); err != nil {
				return err
			}
			p := c.progress()
			buf := make([]byte, 1<<20)
			var done int64
			for {
				n, rerr := r.Read(buf)
				if n > 0 {
					if err := stream.Send(&kurmav1.ImportImageRequest{Part: &kurmav1.ImportImageRequest_Data{Data: buf[:n]}}); err != nil {
						break // the daemon answered early: CloseAndReceive says why
					}
					done += int64(n)
					p.update("upload "+args[0], done, total)
				}
				if rerr == io.EOF {
					break
				}
				if rerr != nil {
					p.done()
					return rerr
				}
			}
			resp, err := stream.CloseAndReceive()
			p.done()
			if err != nil {
				return err
			}
			return c.printImage(resp.Msg.Image)
		},
	}
	cmd.Flags().StringVar(&expectID, "id", "", "refuse the image unless its ID is this")
	return cmd
}

// printImage prints the image a fetch or import stored.
func (c *cli) printImage(img *kurmav1.Image) error {
	if c.json {
		return c.printJSON(img)
	}
	_, err := fmt.Fprintf(c.stdout, "%s\t%s\n", img.Id, imageRef(img))
	return err
}

// imageRef is name:version, or the name.
func imageRef(img *kurmav1.Image) string {
	if v := img.Labels["version"]; v != "" {
		return img.Name + ":" + v
	}
	return img.Name
}

func (c *cli) imageListCmd() *cobra.Command {
	var sortBy string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the stored images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			resp, err := api.images.List(cmd.Context(), connect.NewRequest(&kurmav1.ListImagesRequest{}))
			if err != nil {
				return err
			}
			images := resp.Msg.Images
			less, err := imageOrder(sortBy, images)
			if err != nil {
				return err
			}
			sort.SliceStable(images, less)
			if c.json {
				return c.printJSON(resp.Msg)
			}
			t := &table{header: []string{"ID", "NAME", "SIZE", "IMPORTED"}, shrink: 0}
			now := time.Now()
			for _, img := range images {
				t.add(shortID(img.Id), imageRef(img), humanSize(img.Size), ago(img.ImportedAt.AsTime(), now))
			}
			return t.print(c.stdout)
		},
	}
	cmd.Flags().StringVar(&sortBy, "sort", "name", "sort by name, size or imported")
	return cmd
}

func imageOrder(by string, images []*kurmav1.Image) (func(i, j int) bool, error) {
	switch by {
	case "name":
		return func(i, j int) bool { return imageRef(images[i]) < imageRef(images[j]) }, nil
	case "size":
		return func(i, j int) bool { return images[i].Size > images[j].Size }, nil
	case "imported":
		return func(i, j int) bool { return images[i].ImportedAt.AsTime().After(images[j].ImportedAt.AsTime()) }, nil
	}
	return nil, fmt.Errorf("--sort %q: sort by name, size or imported", by)
}

// shortID cuts an image ID to what people read: sha512- and 16 digits.
func shortID(id string) string {
	if len(id) > len("sha512-")+16 && strings.HasPrefix(id, "sha512-") {
		return id[:len("sha512-")+16]
	}
	return id
}

func (c *cli) imageRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID...",
		Aliases: []string{"remove"},
		Short:   "Remove images no pod uses (by ID or a unique ID prefix)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			for _, id := range args {
				if _, err := api.images.Remove(cmd.Context(), connect.NewRequest(&kurmav1.RemoveImageRequest{Id: id})); err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				fmt.Fprintln(c.stdout, id)
			}
			return nil
		},
	}
}

func (c *cli) imageGCCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Remove every image no pod uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.api()
			if err != nil {
				return err
			}
			resp, err := api.images.GC(cmd.Context(), connect.NewRequest(&kurmav1.GCImagesRequest{}))
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(resp.Msg)
			}
			fmt.Fprintf(c.stdout, "removed %d images, freed %s\n", len(resp.Msg.Removed), humanSize(resp.Msg.FreedBytes))
			return nil
		},
	}
}
