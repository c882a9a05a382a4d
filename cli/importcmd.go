package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/errdefs"
	"github.com/spf13/cobra"
)

func importCmd(g *globals) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := args[0]
			if strings.Contains(src, "://") {
				return fmt.Errorf("importing from a URL is not supported: berth import reads a file or - (stdin): %w", errdefs.ErrNotImplemented)
			}
			if platform != "" {
				return fmt.Errorf("--platform is not supported by berth import: %w", errdefs.ErrNotImplemented)
			}
			o := engine.ImportOptions{Changes: changes, Message: message, Source: src}
			if len(args) == 2 {
				o.Name = args[1]
			}
			var r io.Reader = cmd.InOrStdin()
			if src != "-" {
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			id, err := e.Import(cmd.Context(), r, o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable (not supported)")
	return cmd
}
