package cli

import (
	"fmt"

	"github.com/berth-dev/berth/engine"
	"github.com/spf13/cobra"
)

func commitCmd(g *globals) *cobra.Command {
	var o engine.CommitOptions
	var pause, noPause bool
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			if cmd.Flags().Changed("pause") {
				if cmd.Flags().Changed("no-pause") {
					return usageError{"conflicting options: --no-pause and --pause cannot be used together"}
				}
				noPause = !pause
			}
			o.Pause = !noPause
			if len(args) > 1 {
				o.Reference = args[1]
			}
			id, err := e.Commit(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		}),
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&pause, "pause", "p", true, "Pause container during commit (deprecated: use --no-pause instead)")
	f.MarkDeprecated("pause", "and enabled by default. Use --no-pause to disable pausing during commit.")
	f.BoolVar(&noPause, "no-pause", false, "Disable pausing container during commit")
	f.StringVarP(&o.Comment, "message", "m", "", "Commit message")
	f.StringVarP(&o.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.StringArrayVarP(&o.Changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	return cmd
}
