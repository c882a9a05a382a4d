package cli

import (
	"fmt"
	"strings"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

const stoppedContainersWarning = `WARNING! This will remove all stopped containers.
Are you sure you want to continue?`

// containerPruneCmd is `container prune`: every container that is not
// running, or those the filters (until=, label=, label!=) select.
func containerPruneCmd(g *globals) *cobra.Command {
	var force bool
	filters := &volumeListValue{typ: "filter", check: checkFilter}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			// docker ≥ 29 takes "no" as a cancellation: nothing more is
			// printed and the exit status is 0.
			if !force && !confirm(cmd.InOrStdin(), out, stoppedContainersWarning) {
				return nil
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			rep, err := e.PruneContainers(cmd.Context(), filters.values)
			if err != nil {
				return err
			}
			if len(rep.Deleted) > 0 {
				fmt.Fprintln(out, "Deleted Containers:\n"+strings.Join(rep.Deleted, "\n")+"\n")
			}
			fmt.Fprintln(out, "Total reclaimed space:", units.HumanSize(float64(rep.SpaceReclaimed)))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	f.Var(filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}
