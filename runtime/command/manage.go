package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// idCmd is a command taking one container id.
func idCmd(g *globals, use, short string, fn func(cmd *cobra.Command, g *globals, id string) error) *cobra.Command {
	return &cobra.Command{
		Use: use + " <container-id>", Short: short, Args: exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error { return fn(cmd, g, args[0]) },
	}
}

func stateCmd(g *globals) *cobra.Command {
	return idCmd(g, "state", "output the state of a container", func(_ *cobra.Command, g *globals, id string) error {
		r, err := g.runtime()
		if err != nil {
			return err
		}
		st, err := r.State(id)
		if err != nil {
			return err
		}
		return printJSON(st)
	})
}

func pauseCmd(g *globals) *cobra.Command {
	return idCmd(g, "pause", "pause suspends all processes inside the container", func(_ *cobra.Command, g *globals, id string) error {
		r, err := g.runtime()
		if err != nil {
			return err
		}
		return r.Pause(id)
	})
}

func resumeCmd(g *globals) *cobra.Command {
	return idCmd(g, "resume", "resumes all processes that have been previously paused", func(_ *cobra.Command, g *globals, id string) error {
		r, err := g.runtime()
		if err != nil {
			return err
		}
		return r.Resume(id)
	})
}

func deleteCmd(g *globals) *cobra.Command {
	var force bool
	cmd := idCmd(g, "delete", "delete any resources held by the container", func(cmd *cobra.Command, g *globals, id string) error {
		r, err := g.runtime()
		if err != nil {
			return err
		}
		return r.Delete(cmd.Context(), id, force)
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "forcibly deletes the container if it is still running (uses SIGKILL)")
	return cmd
}

// parseSignal accepts "KILL", "SIGKILL", "kill" or "9".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}

func killCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] <container-id> [signal]",
		Short: "kill sends the specified signal (default: SIGTERM) to the container's init process",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = parseSignal(args[1]); err != nil {
					return err
				}
			}
			r, err := g.runtime()
			if err != nil {
				return err
			}
			return r.Kill(args[0], sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the specified signal to all processes inside the container")
	return cmd
}

func listCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "lists containers started by berth with the given root",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			list, err := r.List()
			if err != nil {
				return err
			}
			switch {
			case quiet:
				for _, c := range list {
					fmt.Println(c.ID)
				}
			case format == "json":
				if list == nil {
					fmt.Println("null")
					return nil
				}
				return json.NewEncoder(os.Stdout).Encode(list)
			case format == "table" || format == "":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
				for _, c := range list {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", c.ID, c.Pid, c.Status, c.Bundle, c.Created.Format(time.RFC3339Nano), c.Owner)
				}
				return w.Flush()
			default:
				return fmt.Errorf("invalid format option %q", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "select one of: table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "display only container IDs")
	return cmd
}

func psCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] <container-id> [ps options]",
		Short: "ps displays the processes running inside a container",
		Args:  minArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			pids, err := r.Pids(args[0])
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			case "table":
				return psTable(pids, args[1:])
			}
			return fmt.Errorf("invalid format option %q", format)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "select one of: table or json")
	return cmd
}

// psTable runs ps(1) and keeps the header and the container's lines, as
// runc does.
func psTable(pids []int, args []string) error {
	if len(args) == 0 {
		args = []string{"-ef"}
	}
	out, err := exec.Command("ps", args...).Output()
	if err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
	col := -1
	for i, h := range strings.Fields(string(lines[0])) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("couldn't find PID field in ps output")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(string(lines[0]))
	for _, l := range lines[1:] {
		f := strings.Fields(string(l))
		if len(f) > col {
			if p, err := strconv.Atoi(f[col]); err == nil && in[p] {
				fmt.Println(string(l))
			}
		}
	}
	return nil
}

func eventsCmd(g *globals) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use: "events [flags] <container-id>", Short: "display container events such as OOM notifications and resource usage statistics",
		Args: exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			id := args[0]
			var lastOOM uint64
			for first := true; ; first = false {
				s, err := r.Stats(id)
				if err != nil {
					return err
				}
				if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"type": "stats", "id": id, "data": s}); err != nil {
					return err
				}
				if stats {
					return nil
				}
				if n, err := r.OOMKills(id); err == nil {
					if n > lastOOM && !first {
						json.NewEncoder(os.Stdout).Encode(map[string]any{"type": "oom", "id": id})
					}
					lastOOM = n
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "display the container's stats then exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "set the stats collection interval")
	return cmd
}
