package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/engine"
	"github.com/spf13/cobra"
)

// topCmd is `top CONTAINER [ps OPTIONS]`: the container's processes as
// the host's ps shows them.
func topCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			top, err := e.Top(cmd.Context(), args[0], strings.Join(args[1:], " "))
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 20, 1, 3, ' ', 0)
			fmt.Fprintln(w, strings.Join(top.Titles, "\t"))
			for _, p := range top.Processes {
				fmt.Fprintln(w, strings.Join(p, "\t"))
			}
			return w.Flush()
		}),
	}
	// ps's options follow the container: none of them is berth's.
	cmd.Flags().SetInterspersed(false)
	return cmd
}
