package cli

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

const defaultStatsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

// statsHeaders are the column names of docker's stats table.
var statsHeaders = map[string]string{
	"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// Sampling. The CPU percentage is the CPU time a container used between
// two readings over the time between them. --no-stream takes its two
// readings noStreamInterval apart (docker's daemon takes about a second;
// half of one reads as steady and keeps scripts quick); streaming reads
// and redraws every streamInterval, the first frame one interval after
// the start.
var (
	noStreamInterval = 500 * time.Millisecond
	streamInterval   = time.Second
)

// statsCmd is `stats [OPTIONS] [CONTAINER...]`: docker's table of each
// container's CPU, memory, network, block I/O and pids, redrawn every
// second (cursor home, each line cleared to its end, the rest of the
// screen cleared: docker's frame) until interrupted, or printed once with
// --no-stream. Without arguments it shows the running containers (all
// with -a), listed anew for every frame; a stopped container shows
// zeros.
func statsCmd(g *globals) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			ctx := cmd.Context()
			var fixed []statsTarget
			if len(args) > 0 {
				var msgs []string
				for _, a := range dedupe(args) {
					c, err := e.Lookup(ctx, a)
					if err != nil {
						msgs = append(msgs, err.Error())
						continue
					}
					fixed = append(fixed, statsTarget{ref: a, id: c.ID})
				}
				if len(msgs) > 0 {
					return errors.New(strings.Join(msgs, "\nError response from daemon: "))
				}
			}
			targets := func() ([]statsTarget, error) {
				if len(args) > 0 {
					return fixed, nil
				}
				cs, err := e.Containers(ctx)
				if err != nil {
					return nil, err
				}
				var out []statsTarget
				for _, c := range cs {
					if all || c.Running() {
						out = append(out, statsTarget{ref: c.ID, id: c.ID})
					}
				}
				return out, nil
			}
			f := resolveFormat(format, defaultStatsTable)
			s := &statsSampler{e: e, prev: map[string]engine.ContainerStats{}}
			ts, err := targets()
			if err != nil {
				return err
			}
			s.sample(ctx, ts)
			out := cmd.OutOrStdout()
			if noStream {
				if len(ts) == 0 {
					return nil // docker prints nothing, not even the header
				}
				if err := sleepCtx(ctx, noStreamInterval); err != nil {
					return err
				}
				var buf bytes.Buffer
				if err := writeList(&buf, f, statsHeaders, s.sample(ctx, ts).rows(!noTrunc)); err != nil {
					return err
				}
				_, err := out.Write(buf.Bytes())
				return err
			}
			for {
				if err := sleepCtx(ctx, streamInterval); err != nil {
					return err
				}
				if ts, err = targets(); err != nil {
					return err
				}
				var buf bytes.Buffer
				if err := writeList(&buf, f, statsHeaders, s.sample(ctx, ts).rows(!noTrunc)); err != nil {
					return err
				}
				if _, err := out.Write(statsFrame(buf.Bytes())); err != nil {
					return err
				}
			}
		}),
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	fl.StringVar(&format, "format", "", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates")
	return cmd
}

// statsFrame is docker's redraw of a table: the cursor home, every line
// followed by "erase to the end of the line", then "erase below".
func statsFrame(table []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\033[H")
	for line := range bytes.SplitSeq(table, []byte{'\n'}) {
		b.Write(line)
		b.WriteString("\033[K\n")
	}
	b.WriteString("\033[J")
	return b.Bytes()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func dedupe(args []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range args {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// statsTarget is a container to show: ref as the user named it (the
// Container column), id its full ID.
type statsTarget struct{ ref, id string }

// statsSampler keeps each container's last reading, for the next CPU
// percentage.
type statsSampler struct {
	e    *engine.Engine
	prev map[string]engine.ContainerStats
}

// statsRow is one container's figures, or its error.
type statsRow struct {
	ref       string
	cur, prev engine.ContainerStats
	hasPrev   bool
	err       error
}

type statsRows []statsRow

// sample reads every target once.
func (s *statsSampler) sample(ctx context.Context, ts []statsTarget) statsRows {
	rows := make(statsRows, 0, len(ts))
	next := make(map[string]engine.ContainerStats, len(ts))
	for _, t := range ts {
		cur, err := s.e.Stats(ctx, t.id)
		p, ok := s.prev[t.id]
		rows = append(rows, statsRow{ref: t.ref, cur: cur, prev: p, hasPrev: ok, err: err})
		switch {
		case err == nil:
			next[t.id] = cur
		case ok:
			next[t.id] = p // keep its ID and name for the rows that follow
		}
	}
	s.prev = next
	return rows
}

func (rs statsRows) rows(trunc bool) []map[string]string {
	out := make([]map[string]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.fields(trunc))
	}
	return out
}

// fields are the row's template fields, as docker's stats formatter has
// them.
func (r statsRow) fields(trunc bool) map[string]string {
	c := r.cur
	if r.err != nil && c.ID == "" {
		c.ID, c.Name = r.prev.ID, r.prev.Name
	}
	id := c.ID
	if trunc {
		id = shortHex(id)
	}
	name := c.Name
	if name == "" {
		name = "--"
	}
	m := map[string]string{"Container": r.ref, "Name": name, "ID": id}
	if r.err != nil {
		for _, k := range []string{"CPUPerc", "MemPerc", "NetIO", "BlockIO", "PIDs"} {
			m[k] = "--"
		}
		m["MemUsage"] = "-- / --"
		return m
	}
	cpu := 0.0
	if r.hasPrev && c.Running && r.prev.Running && c.CPUNanos > r.prev.CPUNanos {
		if wall := c.Read.Sub(r.prev.Read); wall > 0 {
			cpu = float64(c.CPUNanos-r.prev.CPUNanos) / float64(wall.Nanoseconds()) * 100
		}
	}
	mem := 0.0
	if c.MemoryLimit > 0 {
		mem = float64(c.MemoryUsage) / float64(c.MemoryLimit) * 100
	}
	m["CPUPerc"] = percent(cpu)
	m["MemUsage"] = units.BytesSize(float64(c.MemoryUsage)) + " / " + units.BytesSize(float64(c.MemoryLimit))
	m["MemPerc"] = percent(mem)
	m["NetIO"] = units.HumanSizeWithPrecision(float64(c.NetRx), 3) + " / " + units.HumanSizeWithPrecision(float64(c.NetTx), 3)
	m["BlockIO"] = units.HumanSizeWithPrecision(float64(c.BlockRead), 3) + " / " + units.HumanSizeWithPrecision(float64(c.BlockWrite), 3)
	m["PIDs"] = strconv.FormatUint(c.Pids, 10)
	return m
}

func percent(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "%" }
