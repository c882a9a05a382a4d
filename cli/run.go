package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/ref"
	"github.com/berth-dev/berth/shim"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func runCmd(g *globals) *cobra.Command {
	var detach, sigProxy bool
	var detachKeys string
	var opts *containerOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := opts.parse(cmd.Flags(), args)
			if err != nil {
				return statusError{125, withHelp(cmd, parseError{err})}
			}
			if detach {
				cs.Config.AttachStdin, cs.Config.AttachStdout, cs.Config.AttachStderr = false, false, false
				cs.Config.StdinOnce = false
			} else if cs.Config.OpenStdin && cs.Config.AttachStdin {
				cs.Config.StdinOnce = true
			}
			if cs.Config.Tty && !detach {
				cs.HostConfig.ConsoleSize = terminalSize(os.Stdout)
			}
			keys, err := parseDetachKeys(detachKeys)
			if err != nil {
				return statusError{125, withHelp(cmd, parseError{err})}
			}
			e, err := g.engine()
			if err != nil {
				return statusError{125, err}
			}
			defer e.Close()
			ctx := cmd.Context()
			// The container's monitor starts while the container is made.
			var mon *shim.Monitor
			cs.ID, mon = e.PrestartMonitor()
			defer mon.Close()
			c, err := createContainer(ctx, g, e, cs, cmd.ErrOrStderr())
			if err != nil {
				return statusError{125, withHelp(cmd, err)}
			}
			if detach {
				// docker prints the ID as the container starts, whether
				// it starts or not.
				fmt.Fprintln(cmd.OutOrStdout(), c.ID)
				if _, err := e.Start(ctx, ctx, c.ID, engine.StartOptions{Monitor: mon}); err != nil {
					if cs.HostConfig.AutoRemove {
						e.RemoveContainer(context.WithoutCancel(ctx), c.ID, engine.RemoveOptions{Force: true, Volumes: true})
					}
					return statusError{engine.ExitCodeOf(err), withHelp(cmd, err)}
				}
				return nil
			}
			code, err := attachAndStart(ctx, e, c, attachFlags{
				stdin: cs.Config.AttachStdin, stdout: cs.Config.AttachStdout, stderr: cs.Config.AttachStderr,
				sigProxy: sigProxy && !cs.Config.Tty, keys: keys, start: true, removeAfter: cs.HostConfig.AutoRemove,
				monitor: mon,
			}, cmd.OutOrStdout(), cmd.ErrOrStderr())
			var se statusError
			var sf startFailure
			switch {
			case !cs.HostConfig.AutoRemove:
			case err == nil || errors.As(err, &sf):
				// The process ran, or never started: this command removes
				// the container now rather than leave it to the shim's
				// exit command.
				if rerr := e.RemoveWhenDone(context.WithoutCancel(ctx), c.ID); rerr != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", rerr)
				}
			default:
				// Detached, or the attach broke while the container runs
				// on: its removal is its shim's to do after all.
				e.WithdrawExitClaim(c.ID)
			}
			if errors.As(err, &se) && errors.As(err, &sf) {
				return statusError{se.code, withHelp(cmd, se.err)}
			}
			return attachOutcome(code, err)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	opts = addContainerFlags(f)
	f.BoolVarP(&detach, "detach", "d", false, "Run container in background and print container ID")
	f.BoolVar(&sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	f.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func createCmd(g *globals) *cobra.Command {
	var opts *containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := opts.parse(cmd.Flags(), args)
			if err != nil {
				return statusError{125, withHelp(cmd, parseError{err})}
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			defer e.Close()
			c, err := createContainer(cmd.Context(), g, e, cs, cmd.ErrOrStderr())
			var ue usageError
			if errors.As(err, &ue) {
				return statusError{125, withHelp(cmd, err)}
			}
			if err != nil {
				return err // docker's create: the daemon's error, exit 1
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID)
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	opts = addContainerFlags(cmd.Flags())
	return cmd
}

// createContainer creates the container, pulling its image first as
// `docker create` does: always with --pull always, when missing with
// --pull missing (the default), never with --pull never.
func createContainer(ctx context.Context, g *globals, e *engine.Engine, cs *containerSpec, stderr io.Writer) (*engine.Container, error) {
	if cs.CIDFile != "" {
		if _, err := os.Stat(cs.CIDFile); err == nil {
			return nil, usageError{fmt.Sprintf("container ID file found, make sure the other container isn't running or delete %s", cs.CIDFile)}
		}
	}
	pull := func(name string) error {
		r, err := ref.Parse(name)
		if err != nil {
			return err
		}
		var p *ocispec.Platform
		if cs.Platform != "" {
			pl, err := image.ParsePlatform(cs.Platform)
			if err != nil {
				return err
			}
			p = &pl
		}
		return pullImage(ctx, e, name, r, p, false, stderr)
	}
	if cs.Pull == "always" {
		if err := pull(cs.Config.Image); err != nil {
			return nil, err
		}
	}
	req := engine.CreateRequest{ID: cs.ID, Name: cs.Name, Config: cs.Config, HostConfig: cs.HostConfig}
	c, err := e.Create(ctx, req)
	if errdefs.IsNotFound(err) && strings.HasPrefix(err.Error(), "No such image") && cs.Pull != "never" && cs.Pull != "always" {
		// ref.Parse gives a name without a tag docker's default
		// ("busybox:latest"), which docker's run pulls as such: no
		// "Using default tag".
		name := cs.Config.Image
		if r, perr := ref.Parse(name); perr == nil {
			name = r.Familiar()
		}
		fmt.Fprintf(stderr, "Unable to find image '%s' locally\n", name)
		if err := pull(name); err != nil {
			return nil, err
		}
		c, err = e.Create(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	if cs.CIDFile != "" {
		if err := os.WriteFile(cs.CIDFile, []byte(c.ID), 0o644); err != nil {
			return nil, fmt.Errorf("Failed to write the container ID to the file: %w", err)
		}
	}
	return c, nil
}

// withHelp is how docker's run and create word a failure (its withHelp):
// "berth: " and the error — the daemon's, so prefixed as such, unless it
// is the CLI's own (a usageError) — and where to read more.
func withHelp(cmd *cobra.Command, err error) error {
	msg := err.Error()
	var ue usageError
	var pe parseError
	if !errors.As(err, &ue) && !errors.As(err, &pe) {
		msg = "Error response from daemon: " + msg
	}
	return usageError{fmt.Sprintf("%s: %s\n\nRun '%s %s --help' for more information", cmd.Root().Name(), msg, cmd.Root().Name(), cmd.Name())}
}

// parseError is a mistake in run's or create's options, found before
// anything is sent to the engine.
type parseError struct{ error }

func (e parseError) Unwrap() error { return e.error }

// startFailure is the engine's failure to start a container that run
// created.
type startFailure struct{ error }

func (e startFailure) Unwrap() error { return e.error }

// attachFlags say which streams to attach and how.
type attachFlags struct {
	stdin, stdout, stderr bool
	sigProxy              bool
	keys                  []byte
	start                 bool          // start the container once attached (run, start -a)
	removeAfter           bool          // run --rm: this command removes the container after its exit
	monitor               *shim.Monitor // started ahead for the start (run), or nil
}

// attachAndStart attaches the terminal's streams to c (starting it when
// f.start) and returns the process's exit status once it ends, or
// errDetached when the user detached (the detach keys).
func attachAndStart(ctx context.Context, e *engine.Engine, c *engine.Container, f attachFlags, stdout, stderr io.Writer) (int, error) {
	attachCtx, detach := context.WithCancel(ctx)
	defer detach()
	o := &shim.AttachOptions{}
	if f.stdout {
		o.Stdout = stdout
	}
	if f.stderr {
		o.Stderr = stderr
		if c.Config.Tty {
			o.Stderr = stdout
		}
	}
	var restore func()
	if f.stdin && c.Config.OpenStdin {
		in := io.Reader(os.Stdin)
		if c.Config.Tty {
			restore = rawTerminal(os.Stdin)
		}
		if len(f.keys) > 0 {
			in = &detachReader{r: in, keys: f.keys, detach: detach}
		}
		o.Stdin = in
	}
	if restore != nil {
		defer restore()
	}
	// The proxy is in place before the process starts, as docker's CLI
	// does it: a signal meanwhile reaches the container once it runs
	// instead of killing this command.
	if f.sigProxy {
		stop := proxySignals(ctx, e, c.ID)
		defer stop()
	}
	var res <-chan engine.AttachResult
	if f.start {
		started, err := e.Start(ctx, attachCtx, c.ID, engine.StartOptions{Attach: o, RemoveAfter: f.removeAfter, Monitor: f.monitor})
		if err != nil {
			return 0, statusError{engine.ExitCodeOf(err), startFailure{err}}
		}
		res = started.Attached
	} else {
		ch := make(chan engine.AttachResult, 1)
		go func() {
			exit, err := e.Attach(attachCtx, c.ID, *o)
			ch <- engine.AttachResult{Exit: exit, Err: err}
		}()
		res = ch
	}
	if c.Config.Tty {
		stop := e.ResizeOnWinch(ctx, c.ID, os.Stdout)
		defer stop()
	}
	r := <-res
	if r.Err != nil {
		if attachCtx.Err() != nil && ctx.Err() == nil {
			return 0, errDetached
		}
		return 0, statusError{125, r.Err}
	}
	return r.Exit.Code, nil
}

// proxySignals forwards the signals berth receives to the container's
// process (--sig-proxy), until stop is called.
func proxySignals(ctx context.Context, e *engine.Engine, id string) (stop func()) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				// Until the process runs, the kill is retried.
				for try := 0; try < 40; try++ {
					err := e.Kill(ctx, id, fmt.Sprint(int(s.(unix.Signal))))
					if !errdefs.IsFailedPrecondition(err) {
						break
					}
					time.Sleep(25 * time.Millisecond)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// parseDetachKeys reads --detach-keys: comma-separated keys, each a
// letter or "ctrl-<x>" (docker's term.ToBytes). Empty is ctrl-p,ctrl-q.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = "ctrl-p,ctrl-q"
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(strings.ToLower(k), "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, fmt.Errorf("Unknown character: '%s'", k)
			}
		default:
			return nil, fmt.Errorf("Unknown character: '%s'", k)
		}
	}
	return out, nil
}

// detachReader passes stdin through until the detach sequence is typed;
// then it calls detach and ends.
type detachReader struct {
	r       io.Reader
	keys    []byte
	matched int
	detach  func()
}

func (d *detachReader) Read(p []byte) (int, error) {
	buf := make([]byte, max(1, len(p)-len(d.keys)))
	n, err := d.r.Read(buf)
	out := p[:0]
	for _, b := range buf[:n] {
		if b == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				d.detach()
				return len(out), io.EOF
			}
			continue
		}
		out = append(out, d.keys[:d.matched]...)
		d.matched = 0
		out = append(out, b)
	}
	if len(out) == 0 && err == nil {
		return d.Read(p)
	}
	return len(out), err
}

// errDetached ends an attach that the user detached from.
var errDetached = errors.New("detached")
