package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/spf13/cobra"
)

// inspectCmd is `image inspect` (object "image"), `container inspect`
// ("container") and the top-level `inspect` ("object"), which looks for a
// container first, then an image, unless --type says which.
func inspectCmd(g *globals, use, object string) *cobra.Command {
	var format, typ string
	short := map[string]string{"image": "Display detailed information on one or more images",
		"container": "Display detailed information on one or more containers",
		"object":    "Return low-level information on Docker objects"}[object]
	args := map[string]string{"image": "IMAGE [IMAGE...]", "container": "CONTAINER [CONTAINER...]", "object": "NAME|ID [NAME|ID...]"}[object]
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] " + args,
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			var found []any
			var msgs []string
			for _, a := range args {
				var img any
				err := errdefs.ErrNotFound
				if object == "container" || object == "object" && (typ == "" || typ == "container") {
					img, err = e.Inspect(cmd.Context(), a)
				}
				if errdefs.IsNotFound(err) && (object == "image" || object == "object" && (typ == "" || typ == "image")) {
					img, err = e.InspectImage(cmd.Context(), a)
				}
				if errdefs.IsNotFound(err) {
					// docker's: the daemon's answer for a container or an
					// image, the CLI's own when it looked for any object.
					msg := "Error response from daemon: " + err.Error()
					if object == "object" {
						msg = "error: no such object: " + a
					}
					msgs = append(msgs, msg)
					continue
				}
				if err != nil {
					return err
				}
				found = append(found, img)
			}
			out := cmd.OutOrStdout()
			if format == "" || format == "json" {
				raw, err := json.Marshal(found)
				if err != nil {
					return err
				}
				if len(found) == 0 {
					raw = []byte("[]")
				}
				var buf bytes.Buffer
				if err := json.Indent(&buf, raw, "", "    "); err != nil {
					return err
				}
				buf.WriteByte('\n')
				out.Write(buf.Bytes())
			} else {
				t, err := parseTemplate(format)
				if err != nil {
					return err
				}
				for _, v := range found {
					var buf bytes.Buffer
					if err := t.Execute(&buf, v); err != nil {
						// Docker's fallback: the raw JSON, whose keys are
						// the JSON names ({{.Id}}).
						buf.Reset()
						raw, err := rawJSON(v)
						if err != nil {
							return err
						}
						if err := t.Execute(&buf, raw); err != nil {
							return fmt.Errorf("template: %v", err)
						}
					}
					buf.WriteByte('\n')
					out.Write(buf.Bytes())
				}
			}
			if len(msgs) > 0 {
				return usageError{strings.Join(msgs, "\n")}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	if object == "object" {
		cmd.Flags().StringVar(&typ, "type", "", "Only inspect objects of the given type")
	}
	if object == "container" {
		cmd.Flags().BoolP("size", "s", false, "Display total file sizes")
	}
	return cmd
}

// rawJSON is v as generic JSON, numbers kept as written.
func rawJSON(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	return m, dec.Decode(&m)
}
