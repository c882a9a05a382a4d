package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/logs"
	"github.com/spf13/cobra"
)

func logsCmd(g *globals) *cobra.Command {
	var follow, timestamps, details bool
	var sinceF, untilF, tail string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			now := time.Now()
			o := logs.ReadOptions{Follow: follow, Tail: -1}
			var err error
			if sinceF != "" {
				if o.Since, err = events.ParseTime(sinceF, now); err != nil {
					// docker's client checks it before asking the daemon.
					return usageError{fmt.Sprintf("invalid value for %q: %v", "since", err)}
				}
			}
			if untilF != "" {
				if o.Until, err = events.ParseTime(untilF, now); err != nil {
					// docker's client checks it before asking the daemon.
					return usageError{fmt.Sprintf("invalid value for %q: %v", "until", err)}
				}
			}
			if tail != "all" && tail != "" {
				n, err := strconv.Atoi(tail)
				if err != nil {
					return fmt.Errorf("invalid value for \"tail\": %q", tail)
				}
				if n >= 0 {
					o.Tail = n
				}
			}
			info, err := e.Info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			return e.Logs(cmd.Context(), args[0], o, func(en logs.Entry) error {
				w := stdout
				if en.Stream == "stderr" && !info.Config.Tty {
					w = stderr
				}
				if timestamps {
					io.WriteString(w, en.Time.UTC().Format("2006-01-02T15:04:05.000000000Z")+" ")
				}
				_, err := w.Write(en.Line)
				return err
			})
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "Follow log output")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "Show timestamps")
	f.BoolVar(&details, "details", false, "Show extra details provided to logs")
	f.StringVar(&sinceF, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.StringVar(&untilF, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.StringVarP(&tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}
