package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/berth-dev/berth/volume"
	"github.com/docker/go-units"
	apivolume "github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"
)

// volumeCmd is the `volume` command group.
func volumeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "volume COMMAND", Short: "Manage volumes", Args: noArgs}
	cmd.AddCommand(volumeCreateCmd(g), volumeListCmd(g), volumeInspectCmd(g), volumeRemoveCmd(g), volumePruneCmd(g))
	return cmd
}

// volumeListValue is a repeatable flag whose every value is checked (and
// perhaps rewritten) as it is set, so a bad one is a flag error (exit 125)
// in docker's words.
type volumeListValue struct {
	values []string
	typ    string
	check  func(string) (string, error)
}

func (l *volumeListValue) String() string { return "[" + strings.Join(l.values, " ") + "]" }
func (l *volumeListValue) Type() string   { return l.typ }
func (l *volumeListValue) Set(v string) error {
	if l.check != nil {
		var err error
		if v, err = l.check(v); err != nil {
			return err
		}
	}
	l.values = append(l.values, v)
	return nil
}

// checkLabel is docker's opts.ValidateLabel.
func checkLabel(v string) (string, error) {
	key, _, _ := strings.Cut(v, "=")
	key = strings.TrimLeft(key, " \t\n\r\v\f")
	if key == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", v)
	}
	if strings.ContainsAny(key, " \t\n\r\v\f") {
		return "", fmt.Errorf("label '%s' contains whitespaces", key)
	}
	return v, nil
}

// checkFilter is docker's filters.ParseFlag: "name=value", the name
// lower-cased, both trimmed.
func checkFilter(v string) (string, error) {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return "", errors.New("bad format of filter (expected name=value)")
	}
	return strings.ToLower(strings.TrimSpace(k)) + "=" + strings.TrimSpace(val), nil
}

// keyValues is docker's ConvertKVStringsToMap: "k=v", or "k" for an empty
// value. It is never nil: docker sends {} when nothing was given.
func keyValues(list []string) map[string]string {
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func volumeCreateCmd(g *globals) *cobra.Command {
	var driver, name string
	labels := &volumeListValue{typ: "list", check: checkLabel}
	opts := &volumeListValue{typ: "map"}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return usageError{"conflicting options: cannot specify a volume-name through both --name and as a positional arg"}
				}
				name = args[0]
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			v, err := e.VolumeCreate(cmd.Context(), name, volume.CreateOptions{Driver: driver, Labels: keyValues(labels.values), Options: keyValues(opts.values)})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	f.StringVar(&name, "name", "", "Specify volume name")
	f.Lookup("name").Hidden = true
	f.VarP(opts, "opt", "o", "Set driver specific options")
	f.Var(labels, "label", "Set metadata for a volume")
	return cmd
}

// Docker's volume list formats and column names.
const (
	volumeTable = "table {{.Driver}}\t{{.Name}}"
	volumeQuiet = "{{.Name}}"
	volumeRaw   = `name: {{.Name}}\ndriver: {{.Driver}}\n`
)

// volumeRow is one volume as docker's volume formatter shows it.
type volumeRow struct{ v volume.Volume }

func (r volumeRow) Name() string       { return r.v.Name }
func (r volumeRow) Driver() string     { return r.v.Driver }
func (r volumeRow) Scope() string      { return r.v.Scope }
func (r volumeRow) Mountpoint() string { return r.v.Mountpoint }
func (r volumeRow) Links() string      { return "N/A" } // ls reports no usage, as docker
func (r volumeRow) Size() string       { return "N/A" }
func (r volumeRow) Group() string      { return "N/A" } // cluster volumes: none here
func (r volumeRow) Availability() string {
	return "N/A"
}
func (r volumeRow) Status() string { return "N/A" }
func (r volumeRow) Labels() string {
	var kv []string
	for k, v := range r.v.Labels {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}
func (r volumeRow) Label(name string) string { return r.v.Labels[name] }

// MarshalJSON is `--format json`: every field, as docker's formatter
// marshals its context (a map, so the keys come sorted).
func (r volumeRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Name": r.Name(), "Driver": r.Driver(), "Scope": r.Scope(), "Mountpoint": r.Mountpoint(),
		"Labels": r.Labels(), "Links": r.Links(), "Size": r.Size(), "Group": r.Group(),
		"Availability": r.Availability(), "Status": r.Status(),
	})
}

// volumeHeader is the header row of a volume table.
type volumeHeader struct{}

func (volumeHeader) Name() string         { return "VOLUME NAME" }
func (volumeHeader) Driver() string       { return "DRIVER" }
func (volumeHeader) Scope() string        { return "SCOPE" }
func (volumeHeader) Mountpoint() string   { return "MOUNTPOINT" }
func (volumeHeader) Links() string        { return "LINKS" }
func (volumeHeader) Size() string         { return "SIZE" }
func (volumeHeader) Group() string        { return "GROUP" }
func (volumeHeader) Availability() string { return "AVAILABILITY" }
func (volumeHeader) Status() string       { return "STATUS" }
func (volumeHeader) Labels() string       { return "LABELS" }

// Label is docker's header for a label column: the last dotted part of
// its name, dashes and underscores as spaces.
func (volumeHeader) Label(name string) string {
	parts := strings.Split(name, ".")
	return strings.NewReplacer("-", " ", "_", " ").Replace(parts[len(parts)-1])
}

func volumeListCmd(g *globals) *cobra.Command {
	var quiet bool
	var format string
	filters := &volumeListValue{typ: "filter", check: checkFilter}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			vs, err := e.VolumeList(cmd.Context(), filters.values)
			if err != nil {
				return err
			}
			slices.SortFunc(vs, func(a, b volume.Volume) int { return naturalCompare(a.Name, b.Name) })
			switch {
			case (format == "" || format == "table") && quiet:
				format = volumeQuiet
			case format == "raw" && quiet:
				format = `name: {{.Name}}`
			case format == "raw":
				format = volumeRaw
			}
			rows := make([]any, len(vs))
			for i, v := range vs {
				rows[i] = volumeRow{v}
			}
			return writeRows(cmd.OutOrStdout(), resolveFormat(format, volumeTable), volumeHeader{}, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	f.VarP(filters, "filter", "f", `Provide filter values (e.g. "dangling=true")`)
	return cmd
}

// writeRows is writeList for rows with methods (docker's formatter
// contexts): the header value renders the table's first line.
func writeRows(out io.Writer, f listFormat, header any, rows []any) error {
	t, err := parseTemplate(f.tmpl)
	if err != nil {
		return err
	}
	w := out
	var tw *tabwriter.Writer
	if f.table {
		tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
		w = tw
		rows = append([]any{header}, rows...)
	}
	for _, r := range rows {
		var buf bytes.Buffer
		if err := t.Execute(&buf, r); err != nil {
			return fmt.Errorf("template: %v", err)
		}
		fmt.Fprintln(w, buf.String())
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// naturalCompare orders names as docker's volume ls does
// (sortorder.NaturalLess): runs of digits compare as numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			if c := da - db; c != 0 { // fewer leading zeros first
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// apiVolumes are vs in Docker's API type, for inspect's JSON and templates
// (CreatedAt a string, as docker's templates see it).
func apiVolumes(vs []volume.Volume) ([]apivolume.Volume, error) {
	out := make([]apivolume.Volume, 0, len(vs))
	for _, v := range vs {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		var a apivolume.Volume
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func volumeInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *template.Template
			if format != "" && format != "json" {
				var err error
				if t, err = parseTemplate(format); err != nil {
					return statusError{code: 64, err: usageError{err.Error()}}
				}
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			vs, lookupErr := e.VolumeInspect(cmd.Context(), args...)
			found, err := apiVolumes(vs)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if err := writeInspect(out, format, t, found); err != nil {
				return err
			}
			if lookupErr != nil {
				// run prefixes the first line; docker prints every one so.
				return errors.New(strings.ReplaceAll(lookupErr.Error(), "\n", "\nError response from daemon: "))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

// writeInspect prints found as docker's inspect does: an indented JSON
// array ("[]" for none), with "json" one compact line, or t once per
// volume (an empty line for none).
func writeInspect(out io.Writer, format string, t *template.Template, found []apivolume.Volume) error {
	if t == nil {
		if found == nil {
			found = []apivolume.Volume{}
		}
		var raw []byte
		var err error
		if format == "json" {
			raw, err = json.Marshal(found)
		} else {
			raw, err = json.MarshalIndent(found, "", "    ")
		}
		if err != nil {
			return err
		}
		_, err = out.Write(append(raw, '\n'))
		return err
	}
	var buf bytes.Buffer
	for _, v := range found {
		start := buf.Len()
		if err := t.Execute(&buf, v); err != nil {
			// Docker's fallback: the raw JSON, whose keys are the JSON
			// names, where a missing key is an error.
			buf.Truncate(start)
			raw, err := rawJSON(v)
			if err != nil {
				return err
			}
			strict, err := t.Clone()
			if err != nil {
				return err
			}
			if err := strict.Option("missingkey=error").Execute(&buf, raw); err != nil {
				buf.Truncate(start)
				out.Write(buf.Bytes())
				return fmt.Errorf("template parsing error: %v", err)
			}
		}
		buf.WriteByte('\n')
	}
	if buf.Len() == 0 {
		buf.WriteByte('\n')
	}
	_, err := out.Write(buf.Bytes())
	return err
}

func volumeRemoveCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Long:    "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			var msgs []string
			for _, name := range args {
				if err := e.VolumeRemove(cmd.Context(), name, force); err != nil {
					msgs = append(msgs, err.Error())
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), name)
			}
			if len(msgs) > 0 {
				// run prefixes the first line; docker prints every one so.
				return errors.New(strings.Join(msgs, "\nError response from daemon: "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

// docker's prompts for volume prune.
const (
	anonymousVolumesWarning = `WARNING! This will remove anonymous local volumes not used by at least one container.
Are you sure you want to continue?`
	allVolumesWarning = `WARNING! This will remove all local volumes not used by at least one container.
Are you sure you want to continue?`
)

func volumePruneCmd(g *globals) *cobra.Command {
	var all, force bool
	filters := &volumeListValue{typ: "filter", check: checkFilter}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			warning := anonymousVolumesWarning
			if all {
				for _, f := range filters.values {
					if strings.HasPrefix(f, "all=") {
						return usageError{"conflicting options: cannot specify both --all and --filter all=1"}
					}
				}
				warning = allVolumesWarning
			}
			// docker ≥ 29 takes "no" as a cancellation: nothing more is
			// printed and the exit status is 0.
			if !force && !confirm(cmd.InOrStdin(), out, warning) {
				return nil
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			removed, reclaimed, err := e.VolumePrune(cmd.Context(), all, filters.values)
			if err != nil {
				return err
			}
			if len(removed) > 0 {
				fmt.Fprintln(out, "Deleted Volumes:\n"+strings.Join(removed, "\n")+"\n")
			} else {
				reclaimed = 0
			}
			fmt.Fprintln(out, "Total reclaimed space:", units.HumanSize(float64(reclaimed)))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	f.Var(filters, "filter", `Provide filter values (e.g. "label=<label>")`)
	return cmd
}
