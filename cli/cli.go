// Package cli is berth's docker-compatible command line: it parses flags
// into engine requests and renders the answers as docker does — same
// flags, output, messages and exit codes. It makes no system calls and
// holds no policy; the engine does the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/berth-dev/berth/engine"
	"github.com/spf13/cobra"
)

// globals are the flags every berth command takes.
type globals struct {
	root, runRoot, driver string
	debug                 bool
	stdout, stderr        io.Writer
}

func (g *globals) engine() (*engine.Engine, error) {
	log := slog.New(slog.DiscardHandler)
	if g.debug {
		log = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return engine.New(engine.Config{Root: g.root, RunRoot: g.runRoot, StorageDriver: g.driver, Log: log, Registry: registryOptions()})
}

// statusError carries an exit status other than 1 out of a command.
type statusError struct {
	code int
	err  error
}

func (e statusError) Error() string { return e.err.Error() }
func (e statusError) Unwrap() error { return e.err }

// Main runs the command line args (without the program name) and returns
// the exit status: 0, the container's for run-like commands, 125 when
// berth itself failed to run one, 1 for any other failure — docker's.
func Main(ctx context.Context, args []string) int {
	return run(ctx, args, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var se statusError
	code := 1
	if errors.As(err, &se) {
		code = se.code
	}
	if err.Error() == "" {
		return code // the container's exit status: nothing to say
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(g.stderr, ue.msg)
		return code
	}
	// cobra's: unknown command "x" for "berth"
	if rest, ok := strings.CutPrefix(err.Error(), "unknown command \""); ok {
		name, _, _ := strings.Cut(rest, "\"")
		fmt.Fprintf(g.stderr, "berth: '%s' is not a berth command.\nSee 'berth --help'\n", name)
		return code
	}
	fmt.Fprintln(g.stderr, "Error response from daemon:", err)
	return code
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth [OPTIONS] COMMAND",
		Short:         "A container engine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(flagError)
	f := root.PersistentFlags()
	f.StringVar(&g.root, "root", engine.DefaultRoot, "Root directory of persistent berth state")
	f.StringVar(&g.runRoot, "runroot", engine.DefaultRunRoot, "Root directory of berth state that a reboot clears")
	f.StringVar(&g.driver, "storage-driver", "overlay", "Storage driver: overlay or vfs")
	f.BoolVarP(&g.debug, "debug", "D", false, "Enable debug output")
	image := &cobra.Command{Use: "image", Short: "Manage images"}
	image.AddCommand(pullCmd(g))
	image.AddCommand(imagesCmd(g, "ls", "list"), rmiCmd(g, "rm", "remove"), inspectCmd(g, "inspect", "image"), tagCmd(g), historyCmd(g))
	root.AddCommand(imagesCmd(g, "images"), rmiCmd(g, "rmi"), inspectCmd(g, "inspect", "object"), tagCmd(g), historyCmd(g))
	image.AddCommand(pushCmd(g), saveCmd(g), loadCmd(g), importCmd(g))
	image.AddCommand(imagePruneCmd(g))
	root.AddCommand(pushCmd(g), saveCmd(g), loadCmd(g), importCmd(g), loginCmd(g), logoutCmd(g))
	root.AddCommand(pullCmd(g), image)
	ctr := &cobra.Command{Use: "container", Short: "Manage containers"}
	ctr.AddCommand(runCmd(g), createCmd(g), startCmd(g), stopCmd(g, "stop"), stopCmd(g, "restart"), killCmd(g),
		pauseCmd(g, "pause"), pauseCmd(g, "unpause"), rmCmd(g, "rm", "remove"), waitCmd(g), attachCmd(g),
		psCmd(g, "ls", "ps", "list"), logsCmd(g), execCmd(g), inspectCmd(g, "inspect", "container"))
	root.AddCommand(runCmd(g), createCmd(g), startCmd(g), stopCmd(g, "stop"), stopCmd(g, "restart"), killCmd(g),
		pauseCmd(g, "pause"), pauseCmd(g, "unpause"), rmCmd(g, "rm"), waitCmd(g), attachCmd(g),
		psCmd(g, "ps"), logsCmd(g), execCmd(g), ctr)
	ctr.AddCommand(topCmd(g), statsCmd(g), portCmd(g), renameCmd(g), updateCmd(g), containerPruneCmd(g))
	root.AddCommand(topCmd(g), statsCmd(g), portCmd(g), renameCmd(g), updateCmd(g))
	ctr.AddCommand(cpCmd(g), exportCmd(g), diffCmd(g), commitCmd(g))
	root.AddCommand(cpCmd(g), exportCmd(g), diffCmd(g), commitCmd(g))
	root.AddCommand(volumeCmd(g))
	root.AddCommand(systemCmd(g))
	root.AddCommand(eventsCmd(g))
	return root
}
