package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

// imagesTable and imagesDigestsTable are docker's default images formats.
const (
	imagesTable        = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	imagesDigestsTable = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)

// imageHeaders are the column names of docker's image fields.
var imageHeaders = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
	"Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "SIZE",
}

type imagesOptions struct {
	all, quiet, digests, noTrunc bool
	filters                      []string
	format                       string
}

func imagesCmd(g *globals, use string, aliases ...string) *cobra.Command {
	var o imagesOptions
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] [REPOSITORY[:TAG]]",
		Aliases: aliases,
		Short:   "List images",
		Args:    maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.filters = append(o.filters, "reference="+args[0])
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			return listImages(cmd.Context(), e, cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all images (default hides intermediate images)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVar(&o.digests, "digests", false, "Show digests")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "Filter output based on conditions provided")
	f.StringVar(&o.format, "format", "", "Format output using a custom template")
	return cmd
}

// imageFilter is the parsed --filter set: every key's values are OR'ed,
// the keys AND'ed, as docker's filters.Args.
type imageFilter struct {
	dangling      *bool
	references    []string
	labels        []string
	before, since *time.Time
}

func parseImageFilters(ctx context.Context, e *engine.Engine, all []engine.ImageSummary, args []string) (imageFilter, error) {
	var f imageFilter
	created := func(name string) (*time.Time, error) {
		rec, err := e.FindImage(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, s := range all {
			if s.ID == rec.Config {
				return &s.Created, nil
			}
		}
		return nil, fmt.Errorf("No such image: %s", name)
	}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return f, fmt.Errorf("bad format of filter (expected name=value)")
		}
		var err error
		switch strings.ToLower(k) {
		case "dangling":
			switch strings.ToLower(v) {
			case "true", "1":
				b := true
				f.dangling = &b
			case "false", "0":
				b := false
				f.dangling = &b
			default:
				return f, fmt.Errorf("invalid filter 'dangling=%s'", v)
			}
		case "reference":
			f.references = append(f.references, v)
		case "label":
			f.labels = append(f.labels, v)
		case "before":
			f.before, err = created(v)
		case "since":
			f.since, err = created(v)
		default:
			return f, fmt.Errorf("invalid filter '%s'", k)
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// keep reports whether s passes the filter; tagged says whether s's image
// has a tag anywhere (an image with none is dangling).
func (f imageFilter) keep(s engine.ImageSummary, tagged bool) (bool, error) {
	if f.dangling != nil && *f.dangling == tagged {
		return false, nil
	}
	if len(f.references) > 0 {
		if s.Ref.IsZero() {
			return false, nil // docker: a reference filter never shows <none>
		}
		match := false
		for _, p := range f.references {
			ok, err := engine.MatchReference(p, s.Ref)
			if err != nil {
				return false, err
			}
			match = match || ok
		}
		if !match {
			return false, nil
		}
	}
	for _, l := range f.labels {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := s.Labels[k]
		if !ok || (hasValue && got != v) {
			return false, nil
		}
	}
	if f.before != nil && !s.Created.Before(*f.before) {
		return false, nil
	}
	if f.since != nil && !s.Created.After(*f.since) {
		return false, nil
	}
	return true, nil
}

func listImages(ctx context.Context, e *engine.Engine, out io.Writer, o imagesOptions) error {
	all, err := e.ListImages(ctx)
	if err != nil {
		return err
	}
	filter, err := parseImageFilters(ctx, e, all, o.filters)
	if err != nil {
		return err
	}
	tagged := map[digest.Digest]bool{}       // image ID → has a tag
	tagRepos := map[string]bool{}            // image ID + repository with a tag
	repoDigest := map[string]digest.Digest{} // image ID + repository → repo digest
	for _, s := range all {
		key := s.ID.String() + " " + s.Ref.Repository()
		if s.Ref.Tag() != "" && !s.Ref.IsDigested() {
			tagged[s.ID] = true
			tagRepos[key] = true
		}
		if s.Digest != "" && repoDigest[key] == "" {
			repoDigest[key] = s.Digest
		}
	}
	var rows []map[string]string
	seenID := map[string]bool{}
	for _, s := range all {
		key := s.ID.String() + " " + s.Ref.Repository()
		isTag := s.Ref.Tag() != "" && !s.Ref.IsDigested()
		if !isTag && tagRepos[key] {
			continue // a digest name shows as the DIGEST of its repository's tag
		}
		if ok, err := filter.keep(s, tagged[s.ID]); err != nil {
			return err
		} else if !ok {
			continue
		}
		row := imageRow(s, o.noTrunc)
		if isTag {
			row["Tag"] = s.Ref.Tag()
		}
		if d := repoDigest[key]; d != "" {
			row["Digest"] = d.String()
		}
		if o.quiet {
			if seenID[row["ID"]] {
				continue
			}
			seenID[row["ID"]] = true
		}
		rows = append(rows, row)
	}
	def := imagesTable
	if o.digests {
		def = imagesDigestsTable
	}
	format := o.format
	if o.quiet {
		format = "{{.ID}}"
	}
	return writeList(out, resolveFormat(format, def), imageHeaders, rows)
}

// imageRow is docker's image fields of s, as strings.
func imageRow(s engine.ImageSummary, noTrunc bool) map[string]string {
	id := s.ID.String()
	if !noTrunc {
		id = shortHex(id)
	}
	size := humanSize(s.Size)
	created := "N/A"
	if !s.Created.IsZero() {
		created = time.Unix(s.Created.Unix(), 0).String()
	}
	repo := "<none>"
	if !s.Ref.IsZero() {
		repo = s.Ref.FamiliarName()
	}
	return map[string]string{
		"Repository": repo, "Tag": "<none>", "ID": id, "Digest": "<none>",
		"CreatedSince": since(s.Created), "CreatedAt": created, "Size": size, "VirtualSize": size,
		"Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
	}
}

func tagCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			err = e.TagImage(cmd.Context(), args[0], args[1])
			if errdefs.IsNotFound(err) {
				return noSuchImage(args[0])
			}
			return err
		},
	}
}
