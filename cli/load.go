package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/ref"
	"github.com/spf13/cobra"
)

func loadCmd(g *globals) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			} else if isTerminal(r) {
				return fmt.Errorf("requested load from stdin, but stdin is empty: %w", errdefs.ErrInvalidArgument)
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			res, err := e.Load(cmd.Context(), r)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, n := range res.Names {
				fmt.Fprintf(out, "Loaded image: %s\n", ref.MustParse(n).Familiar())
			}
			for _, id := range res.Unnamed {
				fmt.Fprintf(out, "Loaded image ID: %s\n", id)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}
