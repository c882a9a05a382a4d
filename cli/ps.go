package cli

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/shim"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
	"Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
	"LocalVolumes": "LOCAL VOLUMES", "HealthStatus": "HEALTH STATUS",
}

const psTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

func psCmd(g *globals, use string, aliases ...string) *cobra.Command {
	var all, quietF, size, latest, noTrunc bool
	var last int
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS]",
		Aliases: aliases,
		Short:   "List containers",
		Args:    noArgs,
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			match, err := parsePsFilters(filters)
			if err != nil {
				return err
			}
			list, err := e.Containers(cmd.Context())
			if err != nil {
				return err
			}
			if latest {
				last = 1
			}
			var rows []map[string]string
			shown := 0
			for i, c := range list {
				if last > 0 && i >= last {
					break
				}
				if !all && last <= 0 && !c.Running() && !match.wantsStopped() {
					continue
				}
				if !match.match(c, list) {
					continue
				}
				shown++
				rows = append(rows, psRow(cmd, e, c, noTrunc, size))
			}
			tmpl := psTable
			if size {
				tmpl += "\t{{.Size}}"
			}
			if quietF {
				format = "{{.ID}}"
			}
			return writeList(cmd.OutOrStdout(), resolveFormat(format, tmpl), psHeaders, rows)
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVarP(&quietF, "quiet", "q", false, "Only display container IDs")
	f.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	f.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

// psRow is one container's line, with docker's column texts.
func psRow(cmd *cobra.Command, e *engine.Engine, c engine.ContainerInfo, noTrunc, size bool) map[string]string {
	id := c.ID
	command := psCommand(c.Path, c.Args)
	if !noTrunc {
		id = id[:12]
		command = ellipsis(command, 20)
	}
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(c.Config.Labels)) {
		labels = append(labels, k+"="+c.Config.Labels[k])
	}
	var mounts []string
	localVolumes := 0
	health := ""
	if c.State.Health != nil {
		health = c.State.Health.Status
	}
	for _, m := range c.Mounts {
		if m.Driver == "local" {
			localVolumes++
		}
		name := m.Name
		if name == "" {
			name = m.Source
		}
		if !noTrunc && len(name) > 15 {
			name = name[:15] + "…"
		}
		mounts = append(mounts, name)
	}
	row := map[string]string{
		"ID": id, "Image": c.Config.Image, "Command": strconv.Quote(command),
		"CreatedAt":  c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		"RunningFor": units.HumanDuration(time.Since(c.Created)) + " ago",
		"Ports":      "", "State": c.State.Status, "Status": statusText(c.State), "Names": c.Name,
		"Labels": strings.Join(labels, ","), "Mounts": strings.Join(mounts, ","),
		"Networks": string(c.HostConfig.NetworkMode),
		// docker's: sizes only with -s ("0B" without), volumes of the
		// local driver, the health status alone.
		"Size": "0B", "LocalVolumes": strconv.Itoa(localVolumes), "HealthStatus": health,
	}
	if size {
		rw, virt := e.ContainerSize(cmd.Context(), c.Container)
		row["Size"] = fmt.Sprintf("%s (virtual %s)", humanSize(rw), humanSize(virt))
	}
	return row
}

// statusText is the STATUS column, as Docker's State.String.
func statusText(st engineState) string {
	ago := func(t time.Time) string { return units.HumanDuration(time.Since(t)) + " ago" }
	switch st.Status {
	case "running", "paused":
		s := "Up " + units.HumanDuration(time.Since(st.StartedAt))
		if st.Status == "paused" {
			return s + " (Paused)"
		}
		if h := st.Health; h != nil {
			switch h.Status {
			case "starting":
				return s + " (health: starting)"
			default:
				return s + " (" + h.Status + ")"
			}
		}
		return s
	case "restarting":
		return fmt.Sprintf("Restarting (%d) %s", st.ExitCode, ago(st.FinishedAt))
	case "removing":
		return "Removal In Progress"
	case "dead":
		return "Dead"
	case "created":
		return "Created"
	}
	if st.FinishedAt.IsZero() {
		return fmt.Sprintf("Exited (%d)", st.ExitCode)
	}
	return fmt.Sprintf("Exited (%d) %s", st.ExitCode, ago(st.FinishedAt))
}

// psFilter is ps's --filter: values of one key OR, keys AND.
type psFilter map[string][]string

func parsePsFilters(args []string) (psFilter, error) {
	f := psFilter{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		switch k {
		case "id", "name", "label", "exited", "status", "ancestor", "before", "since", "volume", "network", "health", "publish", "expose", "isolation", "is-task":
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
		if k == "status" && !slices.Contains([]string{"created", "restarting", "running", "removing", "paused", "exited", "dead"}, v) {
			return nil, fmt.Errorf("invalid filter 'status=%s'", v)
		}
		if k == "exited" {
			if _, err := strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("invalid filter 'exited=%s'", v)
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// wantsStopped: a status or exited filter shows stopped containers
// without -a, as docker does.
func (f psFilter) wantsStopped() bool {
	return len(f["exited"]) > 0 || slices.ContainsFunc(f["status"], func(s string) bool { return s != "running" && s != "paused" && s != "restarting" })
}

func (f psFilter) match(c engine.ContainerInfo, all []engine.ContainerInfo) bool {
	any := func(key string, fn func(v string) bool) bool {
		vs := f[key]
		return len(vs) == 0 || slices.ContainsFunc(vs, fn)
	}
	created := func(ref string) time.Time {
		for _, o := range all {
			if o.Name == ref || strings.HasPrefix(o.ID, ref) {
				return o.Created
			}
		}
		return time.Time{}
	}
	return any("id", func(v string) bool { return strings.HasPrefix(c.ID, v) }) &&
		any("name", func(v string) bool { return strings.Contains(c.Name, strings.TrimPrefix(v, "/")) }) &&
		any("label", func(v string) bool {
			k, val, hasVal := strings.Cut(v, "=")
			got, ok := c.Config.Labels[k]
			return ok && (!hasVal || got == val)
		}) &&
		any("status", func(v string) bool { return c.State.Status == v }) &&
		any("exited", func(v string) bool {
			return c.State.Status == "exited" && strconv.Itoa(c.State.ExitCode) == v
		}) &&
		any("ancestor", func(v string) bool {
			return c.Config.Image == v || strings.HasPrefix(strings.TrimPrefix(c.Image, "sha256:"), strings.TrimPrefix(v, "sha256:")) ||
				path.Base(c.Config.Image) == v || strings.TrimSuffix(c.Config.Image, ":latest") == v
		}) &&
		any("before", func(v string) bool { t := created(v); return !t.IsZero() && c.Created.Before(t) }) &&
		any("since", func(v string) bool { t := created(v); return !t.IsZero() && c.Created.After(t) }) &&
		any("volume", func(v string) bool {
			return slices.ContainsFunc(c.Mounts, func(m mountPoint) bool { return m.Name == v || m.Destination == v || m.Source == v })
		}) &&
		any("network", func(v string) bool { return string(c.HostConfig.NetworkMode) == v }) &&
		any("health", func(v string) bool {
			if c.State.Health == nil {
				return v == "none"
			}
			return c.State.Health.Status == v
		})
}

type (
	engineState = shim.State
	mountPoint  = container.MountPoint
)

// psCommand is the COMMAND column as docker's daemon builds it: the path
// and the arguments, each argument that holds a space in single quotes.
func psCommand(path string, args []string) string {
	words := []string{path}
	for _, a := range args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}
