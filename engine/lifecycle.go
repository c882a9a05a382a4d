package engine

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/shim"
	"golang.org/x/sys/unix"
)

// ociRuntime opens the OCI runtime a container runs under: berth's own,
// or another runc-compatible binary (--runtime).
func (e *Engine) ociRuntime(runtime string) (oci.Runtime, error) {
	switch runtime {
	case "", "runc", "berth":
		return oci.Builtin(e.runtimeRoot(), e.log)
	}
	return oci.Binary(runtime, e.runtimeRootFor(runtime)), nil
}

// shimFor connects to a container's shim; ErrFailedPrecondition "is not
// running" when it has none.
func (e *Engine) shimFor(ctx context.Context, c *Container) (*shim.Client, shim.State, error) {
	st, err := e.state(c)
	if err != nil {
		return nil, st, err
	}
	switch st.Status {
	case "running", "paused", "restarting":
	default:
		return nil, st, errorf(errdefs.ErrFailedPrecondition, "container %s is not running", c.ID)
	}
	cl, err := shim.Dial(ctx, e.shimSocket(c.ID))
	if err != nil {
		return nil, st, errorf(errdefs.ErrFailedPrecondition, "container %s is not running", c.ID)
	}
	return cl, st, nil
}

// Stop stops a running container as `docker stop` does: its stop signal,
// then SIGKILL after timeout (nil: the container's --stop-timeout, else
// 10 s). Stopping a stopped container succeeds.
func (e *Engine) Stop(ctx context.Context, ref, signal string, timeout *int) error {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	cl, _, err := e.shimFor(ctx, c)
	if errdefs.IsFailedPrecondition(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer cl.Close()
	wait := time.Duration(-1)
	if timeout != nil {
		wait = time.Duration(*timeout) * time.Second
		if *timeout < 0 {
			wait = 1<<63 - 1
		}
	}
	e.containerEvent(ctx, c, "kill", map[string]string{"signal": signalOrDefault(signal, c.Config.StopSignal)})
	if err := cl.Stop(ctx, signal, wait); err != nil {
		return fmt.Errorf("cannot stop container: %s: %w", ref, err)
	}
	e.containerEvent(ctx, c, "stop", nil)
	return nil
}

func signalOrDefault(sig, def string) string {
	if sig != "" {
		return sig
	}
	if def != "" {
		return def
	}
	return "SIGTERM"
}

// Kill sends a signal (default SIGKILL) to a running container's process.
func (e *Engine) Kill(ctx context.Context, ref, signal string) error {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		// docker's kill route words every failure of the kill itself so.
		return fmt.Errorf("cannot kill container: %s: %w", ref, err)
	}
	if signal == "" {
		signal = "SIGKILL"
	}
	if _, err := parseSignal(signal); err != nil {
		return err
	}
	cl, _, err := e.shimFor(ctx, c)
	if err != nil {
		return fmt.Errorf("cannot kill container: %s: %w", ref, err)
	}
	defer cl.Close()
	if err := cl.Kill(ctx, signal); err != nil {
		return fmt.Errorf("cannot kill container: %s: %w", ref, err)
	}
	e.containerEvent(ctx, c, "kill", map[string]string{"signal": signal})
	return nil
}

// Pause freezes a running container; Unpause thaws it.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	return e.freeze(ctx, ref, true)
}

// Unpause thaws a paused container.
func (e *Engine) Unpause(ctx context.Context, ref string) error {
	return e.freeze(ctx, ref, false)
}

func (e *Engine) freeze(ctx context.Context, ref string, pause bool) error {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	cl, st, err := e.shimFor(ctx, c)
	if err != nil {
		if !pause && errdefs.IsFailedPrecondition(err) {
			// docker checks "paused" first: a stopped container is not.
			return errorf(errdefs.ErrFailedPrecondition, "container %s is not paused", c.ID)
		}
		return err
	}
	defer cl.Close()
	switch {
	case pause && st.Status == "paused":
		return errorf(errdefs.ErrFailedPrecondition, "container %s is already paused", c.ID)
	case !pause && st.Status != "paused":
		return errorf(errdefs.ErrFailedPrecondition, "container %s is not paused", c.ID)
	}
	if pause {
		err = cl.Pause(ctx)
	} else {
		err = cl.Resume(ctx)
	}
	if err != nil {
		return err
	}
	e.containerEvent(ctx, c, map[bool]string{true: "pause", false: "unpause"}[pause], nil)
	return nil
}

// Restart stops (as Stop) and starts a container.
func (e *Engine) Restart(ctx context.Context, ref, signal string, timeout *int) error {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	// An --rm container is not removed by the stop of a restart (as
	// Docker turns AutoRemove off meanwhile): this process claims the
	// exit, so the shim's exit command stands down.
	if c.HostConfig.AutoRemove {
		shim.ClaimExit(e.bundleDir(c.ID))
	}
	if err := e.Stop(ctx, ref, signal, timeout); err != nil {
		return err
	}
	// Start waits for the stopped shim's clean-up itself.
	if _, err := e.Start(ctx, ctx, ref, StartOptions{}); err != nil {
		return err
	}
	e.containerEvent(ctx, c, "restart", nil)
	return nil
}

// waitShimGone waits until container id's shim has finished its final
// clean-up (a stopped container's shim unmounts and deletes before it
// exits), so that the container can start again or be removed.
func (e *Engine) waitShimGone(ctx context.Context, id string) error {
	for {
		st, err := shim.ReadState(e.containerDir(id))
		if err != nil || !st.ShimAlive() {
			return nil
		}
		if err := st.WaitGone(ctx); err != nil {
			return err
		}
	}
}

// settleDeadShim ends a container whose shim died while it ran, as
// containerd does for a task whose shim it lost: what is left of the
// container (its processes, cgroup, rootfs mount) is killed and cleaned
// up and it is recorded exited with 137 (128+SIGKILL), or with 255 when
// the runtime has no trace of it left (a reboot: dockerd's code then).
// A --rm container is then removed (ErrNotFound), as its shim would have
// done. While another command holds the container's lock (it cleans up
// itself), the end is only reported.
func (e *Engine) settleDeadShim(c *Container, st shim.State) (shim.State, error) {
	ctx := context.Background()
	code := 255
	if rt, err := e.ociRuntime(c.HostConfig.Runtime); err == nil {
		if _, err := rt.State(ctx, c.ID); err == nil {
			code = 128 + int(unix.SIGKILL)
		}
	}
	ended := func(st shim.State) shim.State {
		st.Status, st.Pid, st.ShimPid, st.ShimStart, st.ExitCode = shim.StatusExited, 0, 0, 0, code
		return st
	}
	l, ok, err := e.tryLock(c.ID)
	if err != nil || !ok {
		return ended(st), nil
	}
	now, err := shim.ReadState(e.containerDir(c.ID))
	switch {
	case err != nil:
		l.Unlock()
		return ended(st), nil
	case now.ShimAlive() || now.Status != "running" && now.Status != "paused" && now.Status != "restarting":
		l.Unlock()
		return now, nil // settled, or started again, meanwhile
	}
	e.cleanupStale(ctx, c)
	now = ended(now)
	now.FinishedAt = time.Now().UTC()
	err = shim.WriteState(e.containerDir(c.ID), now)
	l.Unlock()
	if err != nil {
		return now, err
	}
	e.containerEvent(ctx, c, "die", map[string]string{"exitCode": strconv.Itoa(code)})
	if c.HostConfig.AutoRemove {
		if err := e.RemoveContainer(ctx, c.ID, RemoveOptions{Force: true, Volumes: true}); err == nil {
			return now, errorf(errdefs.ErrNotFound, "No such container: %s", c.ID)
		}
	}
	return now, nil
}

// Wait waits until the container stops (condition "not-running", the
// default; "next-exit"; "removed") and returns its exit.
func (e *Engine) Wait(ctx context.Context, ref, condition string) (shim.Exit, error) {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return shim.Exit{}, err
	}
	switch condition {
	case "", "not-running", "next-exit", "removed":
	default:
		return shim.Exit{}, errorf(errdefs.ErrInvalidArgument, "invalid condition: %q", condition)
	}
	st, err := e.state(c)
	if err != nil {
		return shim.Exit{}, err
	}
	running := st.Status == "running" || st.Status == "paused" || st.Status == "restarting"
	var exit shim.Exit
	if running || condition == "next-exit" {
		cl, err := shim.Dial(ctx, e.shimSocket(c.ID))
		if err == nil {
			exit, err = cl.Wait(ctx)
			cl.Close()
			if err != nil && ctx.Err() != nil {
				return exit, ctx.Err()
			}
		}
		if err != nil { // the shim went: its state has the end
			st, _ = e.state(c)
			exit = shim.Exit{Code: st.ExitCode, OOMKilled: st.OOMKilled, FinishedAt: st.FinishedAt}
		}
	} else {
		exit = shim.Exit{Code: st.ExitCode, OOMKilled: st.OOMKilled, FinishedAt: st.FinishedAt}
	}
	if condition == "removed" {
		for {
			if _, err := e.loadContainer(c.ID); errdefs.IsNotFound(err) {
				break
			}
			select {
			case <-ctx.Done():
				return exit, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return exit, nil
}

// containerEvent logs a container event with Docker's attributes: the
// image, the name and the container's labels.
func (e *Engine) containerEvent(ctx context.Context, c *Container, action string, extra map[string]string) {
	e.Event(ctx, "container", action, c.ID, containerAttrs(c, extra))
}

// containerAttrs are a container event's attributes: its image, name and
// labels, then extra.
func containerAttrs(c *Container, extra map[string]string) map[string]string {
	attrs := map[string]string{"image": c.Config.Image, "name": c.Name}
	maps.Copy(attrs, c.Config.Labels)
	maps.Copy(attrs, extra)
	return attrs
}

// parseSignal reads a signal as Docker does: a number, or a name with or
// without "SIG".
func parseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errorf(errdefs.ErrInvalidArgument, "Invalid signal: %s", s)
		}
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return int(n), nil
	}
	return 0, errorf(errdefs.ErrInvalidArgument, "Invalid signal: %s", s)
}
