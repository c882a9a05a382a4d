package cli

import (
	"strings"

	"github.com/berth-dev/berth/engine"
	"github.com/spf13/cobra"
)

// renameCmd is `rename CONTAINER NEW_NAME`.
func renameCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			if strings.TrimPrefix(strings.TrimSpace(args[1]), "/") == "" {
				// docker's client refuses it before asking the daemon.
				return usageError{"failed to rename container: new name cannot be blank"}
			}
			if err := e.Rename(cmd.Context(), args[0], args[1]); err != nil {
				// docker's CLI words it: its own prefix, then the daemon's.
				return usageError{"failed to rename container: Error response from daemon: " + err.Error()}
			}
			return nil
		}),
	}
}
