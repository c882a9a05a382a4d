package engine

import (
	"context"
	"slices"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/shim"
	"github.com/moby/moby/api/types/container"
)

// BootResult is what Boot did with one container.
type BootResult struct {
	ID, Name string
	// Removed is set for a --rm container that was running when the
	// machine went down: it is removed, as dockerd does, not started.
	Removed bool
	// Err is why the container could not be started or removed.
	Err error
}

// bootAction is what Boot does with a container.
type bootAction int

const (
	bootNothing bootAction = iota
	bootStart
	bootRemove
)

// Boot brings the containers back after the machine restarted (or berth's
// state outlived its processes in some other way), as dockerd does when
// it starts: every container whose shim died while it ran is recorded as
// exited (code 255 unless it had exited already) and its leftovers are
// cleaned up; then, in the order they were created, the containers that
// have been started before and whose restart policy says so are started:
//
//   - always: every one, even one the user stopped (Docker's documented
//     behaviour on a daemon restart);
//   - unless-stopped: unless the user stopped (or killed) it;
//   - on-failure[:N]: when the crash, or its last exit, is a failure that
//     the user did not cause (by stop or kill) and it has not been
//     restarted N times yet.
//
// A container run with --rm that was running is removed instead. report
// is called for each container started or removed, as it happens. A
// container that fails is reported and the others still start; the error
// returned is only a failure to list them.
func (e *Engine) Boot(ctx context.Context, report func(BootResult)) error {
	var cs []*Container
	if err := e.eachContainer(ctx, func(c *Container) { cs = append(cs, c) }); err != nil {
		return err
	}
	slices.SortStableFunc(cs, func(a, b *Container) int { return a.Created.Compare(b.Created) })
	for _, c := range cs {
		if err := ctx.Err(); err != nil {
			return err
		}
		act, err := e.bootSettle(ctx, c)
		if err != nil {
			report(BootResult{ID: c.ID, Name: c.Name, Err: err})
			continue
		}
		switch act {
		case bootStart:
			_, err := e.Start(ctx, ctx, c.ID, StartOptions{})
			report(BootResult{ID: c.ID, Name: c.Name, Err: err})
		case bootRemove:
			err := e.RemoveContainer(ctx, c.ID, RemoveOptions{Force: true, Volumes: true})
			report(BootResult{ID: c.ID, Name: c.Name, Removed: true, Err: err})
		}
	}
	return nil
}

// bootSettle records, under the container's lock, the end of a container
// whose shim died while it ran, and decides what Boot does with it. It
// reads the state as the shim left it: Engine.state settles such a
// container as exited on sight (settleDeadShim), which would hide that it
// was running.
func (e *Engine) bootSettle(ctx context.Context, c *Container) (bootAction, error) {
	l, err := e.lock(ctx, c.ID)
	if err != nil {
		return bootNothing, err
	}
	defer l.Unlock()
	st, err := shim.ReadState(e.containerDir(c.ID))
	if errdefs.IsNotFound(err) {
		return bootNothing, nil // created, never started
	}
	if err != nil {
		return bootNothing, err
	}
	if st.ShimAlive() {
		return bootNothing, nil // it runs (or is being stopped): not ours
	}
	crashed := false
	switch st.Status {
	case shim.StatusRunning, shim.StatusPaused, shim.StatusRestarting:
		crashed = true
		e.cleanupStale(ctx, c)
		st.Status, st.Pid, st.ShimPid, st.ShimStart = shim.StatusExited, 0, 0, 0
		if st.ExitCode == 0 {
			st.ExitCode = 255
		}
		st.FinishedAt = time.Now().UTC()
		if err := shim.WriteState(e.containerDir(c.ID), st); err != nil {
			return bootNothing, err
		}
	case shim.StatusExited:
	default:
		return bootNothing, nil // created, or being removed, or dead
	}
	if st.StartedAt.IsZero() {
		return bootNothing, nil // its start failed: it never ran
	}
	if crashed && c.HostConfig.AutoRemove {
		return bootRemove, nil
	}
	if restartOnBoot(c.HostConfig.RestartPolicy, st) {
		return bootStart, nil
	}
	return bootNothing, nil
}

// restartOnBoot is moby's RestartManager.ShouldRestart for a container
// found stopped when the daemon starts, except that on-failure does not
// bring back a container the user stopped (its exit status, 143 or 137,
// is not the container's failure).
func restartOnBoot(p container.RestartPolicy, st shim.State) bool {
	switch p.Name {
	case container.RestartPolicyAlways:
		return true
	case container.RestartPolicyUnlessStopped:
		return !st.ManualStop
	case container.RestartPolicyOnFailure:
		return !st.ManualStop && st.ExitCode != 0 && (p.MaximumRetryCount == 0 || st.RestartCount < p.MaximumRetryCount)
	}
	return false
}
