package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/spf13/cobra"
)

// rfc3339NanoFixed is docker's event time layout: RFC 3339 with all nine
// digits of the nanoseconds, so the lines align.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

type eventsOptions struct {
	since, until string
	filters      []string
	format       string
}

func eventsCmd(g *globals) *cobra.Command {
	var o eventsOptions
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			path := e.EventsPath()
			e.Close()
			return runEvents(cmd.Context(), path, cmd.OutOrStdout(), o, time.Now())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.since, "since", "", "Show all events created since timestamp")
	f.StringVar(&o.until, "until", "", "Stream events until this timestamp")
	f.VarP(filterFlag{&o.filters}, "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&o.format, "format", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	return cmd
}

// runEvents prints the events of the log at path as `docker events` does:
// from now on, or from --since, and until interrupted or --until.
func runEvents(ctx context.Context, path string, out io.Writer, o eventsOptions, now time.Time) error {
	tmpl, err := eventsTemplate(o.format)
	if err != nil {
		return statusError{code: 64, err: usageError{"Error parsing format: " + err.Error()}}
	}
	ro := events.ReadOptions{}
	// Docker's CLI parses the times and says so plainly; the daemon checks
	// the filters and their order.
	if ro.Since, err = events.ParseTime(o.since, now); err != nil {
		return usageError{err.Error()}
	}
	if ro.Until, err = events.ParseTime(o.until, now); err != nil {
		return usageError{err.Error()}
	}
	if !ro.Until.IsZero() && ro.Until.Before(ro.Since) {
		return fmt.Errorf("`since` time (%s) cannot be after `until` time (%s)", o.since, o.until)
	}
	if ro.Filter, err = events.ParseFilters(o.filters); err != nil {
		return err
	}
	// Without --until, or with one still to come, stream.
	ro.Follow = ro.Until.IsZero() || ro.Until.After(now)
	var buf bytes.Buffer
	return events.Read(ctx, path, ro, func(m events.Message) error {
		buf.Reset()
		if tmpl == nil {
			writeEvent(&buf, m)
		} else {
			if err := tmpl.Execute(&buf, m); err != nil {
				return usageError{err.Error()} // docker's CLI's own error: no "from daemon"
			}
			buf.WriteByte('\n')
		}
		_, err := out.Write(buf.Bytes()) // a line at a time: the reader may be a pipe
		return err
	})
}

// eventsTemplate is --format's template, nil for docker's default lines.
// It is tried on an empty event, as docker does, so that a bad field is
// an error before any event comes.
func eventsTemplate(format string) (*template.Template, error) {
	switch format {
	case "":
		return nil, nil
	case "json":
		format = "{{json .}}"
	}
	t, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, err
	}
	if err := t.Execute(io.Discard, events.Message{}); err != nil {
		return nil, err
	}
	return t, nil
}

// writeEvent writes m as docker's default line: time (local), type,
// action, actor ID, then the attributes sorted by key.
func writeEvent(w *bytes.Buffer, m events.Message) {
	switch {
	case m.TimeNano != 0:
		fmt.Fprintf(w, "%s ", time.Unix(0, m.TimeNano).Format(rfc3339NanoFixed))
	case m.Time != 0:
		fmt.Fprintf(w, "%s ", time.Unix(m.Time, 0).Format(rfc3339NanoFixed))
	}
	fmt.Fprintf(w, "%s %s %s", m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = k + "=" + m.Actor.Attributes[k]
		}
		fmt.Fprintf(w, " (%s)", strings.Join(attrs, ", "))
	}
	w.WriteByte('\n')
}

// filterFlag is a repeatable --filter that checks each value's form as
// docker's FilterOpt does, so a bad one is a flag error (exit 125).
type filterFlag struct{ vals *[]string }

func (f filterFlag) String() string { return "" }
func (f filterFlag) Type() string   { return "filter" }

func (f filterFlag) Set(v string) error {
	if v != "" && !strings.Contains(v, "=") {
		return errors.New("bad format of filter (expected name=value)")
	}
	*f.vals = append(*f.vals, v)
	return nil
}
