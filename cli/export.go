package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/engine"
	"github.com/spf13/cobra"
)

func exportCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			if output == "" {
				if isTTY(cmd.OutOrStdout()) {
					return usageError{"cowardly refusing to save to a terminal. Use the -o flag or redirect"}
				}
				return e.Export(cmd.Context(), args[0], cmd.OutOrStdout())
			}
			// Write beside the target and rename, as docker's atomic
			// writer does: a failed export leaves no partial archive.
			f, err := os.CreateTemp(filepath.Dir(output), ".berth-export-")
			if err != nil {
				return usageError{fmt.Sprintf("failed to export container: %v", err)}
			}
			defer os.Remove(f.Name())
			defer f.Close()
			if err := e.Export(cmd.Context(), args[0], f); err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), output)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}
