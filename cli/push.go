package cli

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/ref"
	"github.com/berth-dev/berth/registry"
	"github.com/spf13/cobra"
)

// CertsDirEnv names a directory laid out as /etc/docker/certs.d that
// berth's registry client reads instead of it. docker has no such
// setting; berth's tests use it to trust a test registry's CA.
const CertsDirEnv = "BERTH_CERTS_DIR"

// registryOptions are the registry client's options from the
// environment.
func registryOptions() []registry.Option {
	if dir := os.Getenv(CertsDirEnv); dir != "" {
		return []registry.Option{registry.WithCertsDir(dir)}
	}
	return nil
}

func pushCmd(g *globals) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			var o engine.PushOptions
			if !quiet {
				if !hasTag(args[0]) {
					fmt.Fprintln(out, "Using default tag: latest")
				}
				fmt.Fprintf(out, "The push refers to repository [%s]\n", r.FamiliarName())
				o.Progress = newProgressWriter(out, isTTY(out)).Update
			}
			res, err := e.Push(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(out, r.Familiar())
				return nil
			}
			if res.PlatformOnly {
				fmt.Fprintln(out, "Not all multiplatform-content is present and only the available single-platform image was pushed")
				fmt.Fprintf(out, "%s -> %s\n", res.Index.Digest, res.Pushed.Digest)
			}
			tag := r.Tag()
			if r.IsDigested() {
				tag = r.Digest().String()
			}
			fmt.Fprintf(out, "%s: digest: %s size: %d\n", tag, res.Pushed.Digest, res.Pushed.Size)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}
