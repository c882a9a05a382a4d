package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/spf13/cobra"
)

// historyTable is docker's default history format.
const historyTable = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"

var historyHeaders = map[string]string{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
}

func historyCmd(g *globals) *cobra.Command {
	var human, noTrunc, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			items, err := e.History(cmd.Context(), args[0])
			if errdefs.IsNotFound(err) {
				return noSuchImage(args[0])
			}
			if err != nil {
				return err
			}
			rows := make([]map[string]string, len(items))
			for i, it := range items {
				id := it.ID
				if !noTrunc && strings.HasPrefix(id, "sha256:") {
					id = shortHex(id)
				}
				by := strings.ReplaceAll(it.CreatedBy, "\t", " ")
				if !noTrunc {
					by = ellipsis(by, 45)
				}
				at := time.Unix(it.Created.Unix(), 0).Format(time.RFC3339)
				created, size := at, strconv.FormatInt(it.Size, 10)
				if human {
					created, size = since(it.Created), humanSize(it.Size)
				}
				rows[i] = map[string]string{
					"ID": id, "CreatedSince": created, "CreatedAt": at, "CreatedBy": by,
					"Size": size, "Comment": it.Comment, "Tags": strings.Join(it.Tags, ", "),
				}
			}
			if quiet {
				format = "{{.ID}}"
			}
			return writeList(cmd.OutOrStdout(), resolveFormat(format, historyTable), historyHeaders, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}
