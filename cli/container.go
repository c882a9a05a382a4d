package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/errdefs"
	"github.com/spf13/cobra"
)

// eachContainer runs fn for every argument, printing the argument on
// success (docker's output for stop, kill, rm, ...) and every error,
// docker-style, at the end.
func eachContainer(cmd *cobra.Command, args []string, print bool, fn func(ctx context.Context, ref string) error) error {
	var msgs []string
	for _, a := range args {
		if err := fn(cmd.Context(), a); err != nil {
			if !errors.Is(err, errSkipped) {
				msgs = append(msgs, err.Error())
			}
			continue
		}
		if print {
			fmt.Fprintln(cmd.OutOrStdout(), a)
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "\nError response from daemon: "))
	}
	return nil
}

// errSkipped tells eachContainer to print neither the argument nor an
// error for it.
var errSkipped = errors.New("skipped")

// withEngine opens the engine for a command's RunE.
func withEngine(g *globals, fn func(cmd *cobra.Command, e *engine.Engine, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e, err := g.engine()
		if err != nil {
			return err
		}
		defer e.Close()
		return fn(cmd, e, args)
	}
}

func startCmd(g *globals) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			if !attach && !interactive {
				return startEach(cmd, e, args)
			}
			if len(args) > 1 {
				return usageError{"you cannot start and attach multiple containers at once"}
			}
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return err
			}
			info, err := e.Info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if info.Running() {
				return nil
			}
			code, err := attachAndStart(cmd.Context(), e, info.Container, attachFlags{
				stdin: interactive, stdout: true, stderr: true, sigProxy: !info.Config.Tty, keys: keys, start: true,
			}, cmd.OutOrStdout(), cmd.ErrOrStderr())
			return attachOutcome(code, err)
		}),
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// startEach starts each container as docker's start does without -a: the
// name of each one started on stdout, the daemon's error for each one that
// failed on stderr, then the CLI's own "failed to start containers: ...".
func startEach(cmd *cobra.Command, e *engine.Engine, args []string) error {
	ctx := cmd.Context()
	var failed []string
	for _, ref := range args {
		if _, err := e.Start(ctx, ctx, ref, engine.StartOptions{}); err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", err)
			failed = append(failed, ref)
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), ref)
	}
	if len(failed) > 0 {
		return usageError{"failed to start containers: " + strings.Join(failed, ", ")}
	}
	return nil
}

func stopCmd(g *globals, use string) *cobra.Command {
	var signal string
	var timeout int
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: map[string]string{"stop": "Stop one or more running containers", "restart": "Restart one or more containers"}[use],
		Args:  minArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			var t *int
			if cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time") {
				t = &timeout
			}
			return eachContainer(cmd, args, true, func(ctx context.Context, ref string) error {
				if use == "restart" {
					return e.Restart(ctx, ref, signal, t)
				}
				return e.Stop(ctx, ref, signal, t)
			})
		}),
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().IntVar(&timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	cmd.Flags().MarkHidden("time")
	return cmd
}

func killCmd(g *globals) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			return eachContainer(cmd, args, true, func(ctx context.Context, ref string) error {
				return e.Kill(ctx, ref, signal)
			})
		}),
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func pauseCmd(g *globals, use string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " CONTAINER [CONTAINER...]",
		Short: map[string]string{"pause": "Pause all processes within one or more containers", "unpause": "Unpause all processes within one or more containers"}[use],
		Args:  minArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			return eachContainer(cmd, args, true, func(ctx context.Context, ref string) error {
				if use == "pause" {
					return e.Pause(ctx, ref)
				}
				return e.Unpause(ctx, ref)
			})
		}),
	}
}

func rmCmd(g *globals, use string, aliases ...string) *cobra.Command {
	var o engine.RemoveOptions
	var link bool
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: aliases,
		Short:   "Remove one or more containers",
		Args:    minArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			return eachContainer(cmd, args, true, func(ctx context.Context, ref string) error {
				err := e.RemoveContainer(ctx, ref, o)
				if o.Force && errdefs.IsNotFound(err) {
					return errSkipped // docker's rm -f: nothing to say of what is not there
				}
				return err
			})
		}),
	}
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	cmd.Flags().BoolVarP(&link, "link", "l", false, "Remove the specified link")
	return cmd
}

func waitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			return eachContainer(cmd, args, false, func(ctx context.Context, ref string) error {
				exit, err := e.Wait(ctx, ref, "not-running")
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), exit.Code)
				return nil
			})
		}),
	}
}

func attachCmd(g *globals) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: withEngine(g, func(cmd *cobra.Command, e *engine.Engine, args []string) error {
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return err
			}
			info, err := e.Info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !info.Running() {
				return fmt.Errorf("You cannot attach to a stopped container, start it first")
			}
			code, err := attachAndStart(cmd.Context(), e, info.Container, attachFlags{
				stdin: !noStdin, stdout: true, stderr: true, sigProxy: sigProxy && !info.Config.Tty, keys: keys,
			}, cmd.OutOrStdout(), cmd.ErrOrStderr())
			return attachOutcome(code, err)
		}),
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// attachOutcome is how an attached command ends: nothing on a detach,
// the error, or the container's exit status as berth's.
func attachOutcome(code int, err error) error {
	switch {
	case errors.Is(err, errDetached):
		return nil
	case err != nil:
		return err
	case code != 0:
		return statusError{code, quiet{}}
	}
	return nil
}
