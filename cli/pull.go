package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/ref"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func pullCmd(g *globals) *cobra.Command {
	var quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p *ocispec.Platform
			if platform != "" {
				pl, err := image.ParsePlatform(platform)
				if err != nil {
					return err
				}
				p = &pl
			}
			r, err := ref.Parse(args[0])
			if err != nil {
				return err
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			out := cmd.OutOrStdout()
			if err := pullImage(cmd.Context(), e, args[0], r, p, quiet, out); err != nil {
				return err
			}
			fmt.Fprintln(out, r.String())
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	cmd.Flags().BoolP("all-tags", "a", false, "Download all tagged images in the repository (not supported)")
	return cmd
}

// hasTag reports whether the user wrote a tag or digest.
func hasTag(s string) bool {
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ':', '@':
			return true
		case '/':
			return false
		}
	}
	return false
}

// familiarPath is the repository as docker pull names it: "library/busybox".
func familiarPath(r ref.Reference) string {
	if r.Domain() == "docker.io" {
		return r.Path()
	}
	return r.Domain() + "/" + r.Path()
}

// pullImage pulls name (parsed as r) and reports it on out as docker pull
// does; quiet prints nothing (the caller prints the reference).
func pullImage(ctx context.Context, e *engine.Engine, name string, r ref.Reference, p *ocispec.Platform, quiet bool, out io.Writer) error {
	o := engine.PullOptions{Platform: p}
	if !quiet {
		if r.Tag() == "latest" && !hasTag(name) {
			fmt.Fprintln(out, "Using default tag: latest")
		}
		tag := r.Tag()
		if r.IsDigested() {
			tag = r.Digest().String()
		}
		fmt.Fprintf(out, "%s: Pulling from %s\n", tag, familiarPath(r))
		o.Progress = newProgressWriter(out, isTTY(out)).Update
	}
	res, err := e.Pull(ctx, name, o)
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(out, "Digest: %s\n", res.Image.Target.Digest)
		if res.Downloaded {
			fmt.Fprintf(out, "Status: Downloaded newer image for %s\n", r.Familiar())
		} else {
			fmt.Fprintf(out, "Status: Image is up to date for %s\n", r.Familiar())
		}
	}
	return nil
}
