// Package command is berth's runc-compatible command line: `berth runtime
// <command>`, also reachable as an executable named berth-runtime, so that
// podman (--runtime), containerd's runc shim (BinaryName) and conmon can
// drive berth exactly as they drive runc.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	goruntime "runtime"

	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

// globals are runc's global flags.
type globals struct {
	root, log, logFormat string
	debug, systemdCgroup bool
	rootless, criu       string
	logger               *slog.Logger
	logFile              io.Closer
}

func (g *globals) runtime() (*runtime.Runtime, error) {
	return runtime.New(g.root, g.systemdCgroup, g.logger)
}

// Main runs the runtime command line with args (without the program
// name) and returns the process exit status.
func Main(ctx context.Context, args []string) int {
	g := &globals{}
	root := newRoot(g)
	root.SetArgs(args)
	code := 0
	root.SetContext(context.WithValue(ctx, exitKey{}, &code))
	err := root.Execute()
	if g.logFile != nil {
		defer g.logFile.Close()
	}
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return int(ee)
		}
		if g.logger != nil {
			g.logger.Error(err.Error())
		}
		fmt.Fprintln(os.Stderr, "berth-runtime:", err)
		return 1
	}
	return code
}

// exitError carries a container's exit status out of `run` and `exec`.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

type exitKey struct{}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth-runtime",
		Short:         "Run OCI bundles (a runc-compatible runtime)",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setupLog()
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.root, "root", runtime.DefaultRoot, "root directory for storage of container state")
	f.StringVar(&g.log, "log", "", "set the log file to write runtime logs to")
	f.StringVar(&g.logFormat, "log-format", "text", "set the log format ('text' or 'json')")
	f.BoolVar(&g.debug, "debug", false, "enable debug logging")
	f.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "cgroupsPath is slice:prefix:name (no systemd calls are made)")
	f.StringVar(&g.rootless, "rootless", "auto", "accepted for runc compatibility")
	f.StringVar(&g.criu, "criu", "criu", "accepted for runc compatibility; checkpointing is not supported")
	root.AddCommand(
		createCmd(g), runCmd(g), startCmd(g), stateCmd(g), killCmd(g), deleteCmd(g),
		execCmd(g), psCmd(g), listCmd(g), pauseCmd(g), resumeCmd(g), eventsCmd(g),
		updateCmd(g), featuresCmd(g), specCmd(g),
	)
	// runc's shape: engines (podman info, go-runc) read these lines.
	root.Version = "1.0.0"
	root.SetVersionTemplate("berth-runtime version {{.Version}}\nspec: " + specs.Version + "\ngo: " + goruntime.Version() + "\n")
	return root
}

func (g *globals) setupLog() error {
	w := io.Writer(io.Discard)
	if g.log != "" {
		f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		w, g.logFile = f, f
	} else if g.debug {
		w = os.Stderr
	}
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		// runc's (logrus's) field names, which conmon and containerd read.
		switch a.Key {
		case slog.LevelKey:
			return slog.String("level", lower(a.Value.String()))
		case slog.MessageKey:
			return slog.String("msg", a.Value.String())
		case slog.TimeKey:
			return slog.String("time", a.Value.Time().Format(time.RFC3339Nano))
		}
		return a
	}}
	switch g.logFormat {
	case "json":
		g.logger = slog.New(slog.NewJSONHandler(w, opts))
	case "text", "":
		g.logger = slog.New(slog.NewTextHandler(w, opts))
	default:
		return fmt.Errorf("unknown log-format %q", g.logFormat)
	}
	return nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// exactArgs is cobra.ExactArgs with runc's wording.
func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q requires exactly %d argument(s): %s", cmd.Name(), n, usage)
		}
		return nil
	}
}

func minArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("%q requires a minimum of %d argument(s): %s", cmd.Name(), n, usage)
		}
		return nil
	}
}
