package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/go-units"
)

// templateFuncs are the functions docker's --format templates have
// (docker/cli templates.basicFunctions).
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "" // text/template reports no error from here; docker panics
		}
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, prefix, suffix int) string {
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if len([]rune(s)) > n {
			return string([]rune(s)[:n])
		}
		return s
	},
	"println": func(args ...any) string { return fmt.Sprintln(args...) },
}

// parseTemplate parses a --format template as docker does.
func parseTemplate(format string) (*template.Template, error) {
	t, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %v", err)
	}
	return t, nil
}

// listFormat is a list command's --format resolved as docker's formatter
// resolves it: "" or "table" is the default table, "table T" a table of
// T under a header row, "json" one JSON object per line, anything else a
// template printed once per row with no header.
type listFormat struct {
	tmpl  string
	table bool
}

func resolveFormat(format, defaultTable string) listFormat {
	switch {
	case format == "" || format == "table":
		format = defaultTable
	case format == "json":
		return listFormat{tmpl: "{{json .}}"}
	}
	f := listFormat{tmpl: format}
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		f.table, f.tmpl = true, strings.TrimSpace(rest)
	}
	f.tmpl = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(f.tmpl)
	return f
}

// writeList renders rows with f: a header row (headers holds each field's
// column name) for a table, then a line per row, aligned as docker aligns
// them (tabwriter with minimum width 10 and padding 3).
func writeList(out io.Writer, f listFormat, headers map[string]string, rows []map[string]string) error {
	t, err := parseTemplate(f.tmpl)
	if err != nil {
		return err
	}
	w := out
	var tw *tabwriter.Writer
	if f.table {
		tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
		w = tw
		var buf bytes.Buffer
		if err := t.Execute(&buf, headers); err != nil {
			return fmt.Errorf("template: %v", err)
		}
		fmt.Fprintln(w, buf.String())
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

// humanSize is a size as docker prints it: "4.26MB".
func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

// since is a time as docker's CREATED column prints it: "2 years ago".
func since(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(time.Now().UTC().Sub(t)) + " ago"
}

// shortHex is the 12-hex form docker prints for an ID ("sha256:" cut).
func shortHex(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// ellipsis cuts s to n runes, the last one "…", as docker truncates.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
