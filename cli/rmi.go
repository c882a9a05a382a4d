package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/ref"
	"github.com/spf13/cobra"
)

func rmiCmd(g *globals, use string, aliases ...string) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] IMAGE [IMAGE...]",
		Aliases: aliases,
		Short:   "Remove one or more images",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			out := cmd.OutOrStdout()
			var msgs []string
			for _, a := range args {
				items, err := e.RemoveImage(cmd.Context(), a, force)
				for _, it := range items {
					if it.Untagged != "" {
						fmt.Fprintln(out, "Untagged:", it.Untagged)
					} else {
						fmt.Fprintln(out, "Deleted:", it.Deleted)
					}
				}
				if err != nil {
					msgs = append(msgs, err.Error())
				}
			}
			if len(msgs) > 0 {
				// run prefixes the first line; docker prints every one so.
				return errors.New(strings.Join(msgs, "\nError response from daemon: "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

// noSuchImage is docker's error for an image argument that names nothing.
func noSuchImage(name string) error {
	if r, err := ref.Parse(name); err == nil {
		name = r.Familiar()
	}
	return fmt.Errorf("No such image: %s%w", name, quiet{errdefs.ErrNotFound})
}

// quiet wraps an error class without adding to the message.
type quiet struct{ class error }

func (q quiet) Error() string { return "" }
func (q quiet) Unwrap() error { return q.class }
