package cli

import (
	"fmt"

	"github.com/berth-dev/berth/engine"
	"github.com/spf13/cobra"
)

func diffCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			changes, err := e.Changes(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, c := range changes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", c.Kind, c.Path)
			}
			return nil
		}),
	}
}
