package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/errdefs"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func saveCmd(g *globals) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if output == "" {
				if isTerminal(w) {
					return fmt.Errorf("cowardly refusing to save to a terminal. Use the -o flag or redirect: %w", errdefs.ErrInvalidArgument)
				}
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			if output == "" {
				return e.Save(cmd.Context(), w, args, format)
			}
			// Write beside the target and rename, so a failed save leaves
			// no partial archive under the name asked for.
			f, err := os.CreateTemp(filepath.Dir(output), ".berth-save-")
			if err != nil {
				return fmt.Errorf("failed to save image: %w", err)
			}
			defer os.Remove(f.Name())
			defer f.Close()
			if err := e.Save(cmd.Context(), f, args, format); err != nil {
				return err
			}
			if err := f.Chmod(0o644); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	cmd.Flags().StringVar(&format, "format", engine.SaveDocker, "Archive format: docker (docker 25+'s docker-archive, an OCI layout with manifest.json) or oci (an OCI image layout with the stored blobs; berth's extra)")
	return cmd
}

// isTerminal reports whether f (a reader or writer) is a terminal; a
// character device such as /dev/null is not.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(file.Fd()), unix.TCGETS)
	return err == nil
}
