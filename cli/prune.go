package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/engine"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// docker's prompts for image prune.
const (
	allImageWarning = `WARNING! This will remove all images without at least one container associated to them.
Are you sure you want to continue?`
	danglingWarning = `WARNING! This will remove all dangling images.
Are you sure you want to continue?`
)

// imagePruneCmd is `image prune`: dangling images, or with -a every image
// no container uses, then the store's garbage.
func imagePruneCmd(g *globals) *cobra.Command {
	var all, force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if !force {
				warning := danglingWarning
				if all {
					warning = allImageWarning
				}
				if !confirm(cmd.InOrStdin(), out, warning) {
					return statusError{code: 1, err: errors.New("image prune has been cancelled")}
				}
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			rep, err := e.PruneImages(cmd.Context(), engine.PruneOptions{All: all, Filters: filters})
			if len(rep.Deleted) > 0 {
				var sb strings.Builder
				sb.WriteString("Deleted Images:\n")
				for _, it := range rep.Deleted {
					if it.Untagged != "" {
						fmt.Fprintf(&sb, "untagged: %s\n", it.Untagged)
					} else {
						fmt.Fprintf(&sb, "deleted: %s\n", it.Deleted)
					}
				}
				fmt.Fprintln(out, sb.String())
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(out, "Total reclaimed space:", units.HumanSize(float64(rep.SpaceReclaimed)))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	f.StringArrayVar(&filters, "filter", nil, `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// confirm asks as docker's prompt.Confirm does: message and " [y/N] ",
// then one line of in; only "y" or "Y" is yes.
func confirm(in io.Reader, out io.Writer, message string) bool {
	fmt.Fprint(out, message+" [y/N] ")
	sc := bufio.NewScanner(in)
	if !sc.Scan() {
		fmt.Fprintln(out)
		return false
	}
	return strings.EqualFold(strings.TrimSpace(sc.Text()), "y")
}
