package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/shim"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// RemoveOptions are `rm`'s flags.
type RemoveOptions struct {
	Force   bool // kill a running container first
	Volumes bool // remove its anonymous volumes too
}

// RemoveContainer removes a container: its snapshot, logs, bundle, name
// and record, and with Volumes its anonymous volumes. A running container
// is refused unless Force. Every step can be repeated, so an rm killed
// half-way is finished by the next one; meanwhile the container shows as
// "removing".
func (e *Engine) RemoveContainer(ctx context.Context, ref string, o RemoveOptions) error {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	l, err := e.lock(ctx, c.ID)
	if err != nil {
		return err
	}
	defer l.Unlock()
	if _, err := e.loadContainer(c.ID); err != nil {
		os.Remove(e.lockPath(c.ID)) // removed while we waited
		return err
	}
	st, err := e.state(c)
	if err != nil {
		return err
	}
	switch st.Status {
	case "running", "paused", "restarting":
		if !o.Force {
			verb := map[string]string{"running": "is running", "paused": "is paused", "restarting": "is restarting"}[st.Status]
			return errorf(errdefs.ErrConflict, "cannot remove container \"/%s\": container %s: stop the container before removing or force remove", c.Name, verb)
		}
		if err := e.kill(ctx, c, st); err != nil {
			return fmt.Errorf("cannot remove container \"/%s\": could not kill: %w", c.Name, err)
		}
	default:
		if st.ShimAlive() { // a start killed before it started the process
			if err := e.kill(ctx, c, st); err != nil {
				return fmt.Errorf("cannot remove container \"/%s\": could not kill: %w", c.Name, err)
			}
		}
	}
	os.WriteFile(filepath.Join(e.containerDir(c.ID), removingFile), nil, 0o600)
	if err := e.removeParts(ctx, c); err != nil {
		return err
	}
	if o.Volumes {
		e.removeAnonymousVolumes(ctx, c)
	}
	os.Remove(e.lockPath(c.ID))
	e.containerEvent(ctx, c, "destroy", nil)
	return nil
}

// kill ends a running container for rm -f: SIGKILL without restart, then
// wait for its shim to finish its clean-up.
func (e *Engine) kill(ctx context.Context, c *Container, st shim.State) error {
	cl, err := shim.Dial(ctx, e.shimSocket(c.ID))
	if err == nil {
		if st.Status == "paused" {
			cl.Resume(ctx)
		}
		err = cl.Stop(ctx, "SIGKILL", 0)
		cl.Close()
	}
	deadline, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if werr := e.waitShimGone(deadline, c.ID); werr != nil {
		if err != nil {
			return err
		}
		return werr
	}
	return nil
}

// removeParts deletes everything a container owns but its volumes, in an
// order that leaves the record for last: whatever a kill interrupts, the
// next rm finds.
func (e *Engine) removeParts(ctx context.Context, c *Container) error {
	e.cleanupStale(ctx, c)
	if err := os.RemoveAll(e.bundleDir(c.ID)); err != nil {
		return fmt.Errorf("remove bundle: %w", err)
	}
	if c.Snapshot != "" {
		if err := e.snapshots.Remove(ctx, c.Snapshot); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove rootfs of %s: %w", c.Name, err)
		}
	}
	e.releaseName(c.Name, c.ID)
	// The record goes first, then the rest of the directory.
	os.Remove(filepath.Join(e.containerDir(c.ID), recordFile))
	if err := os.RemoveAll(e.containerDir(c.ID)); err != nil {
		return fmt.Errorf("remove container directory: %w", err)
	}
	return nil
}

// removeAnonymousVolumes removes the container's anonymous volumes that
// no other container uses (rm -v).
func (e *Engine) removeAnonymousVolumes(ctx context.Context, c *Container) {
	vols, err := e.volumes()
	if err != nil {
		return
	}
	for _, mp := range c.Mounts {
		if mp.Type != mount.TypeVolume || mp.Name == "" {
			continue
		}
		v, err := vols.Get(ctx, mp.Name)
		if err != nil {
			continue
		}
		if _, anon := v.Labels["com.docker.volume.anonymous"]; !anon {
			continue
		}
		if users, _ := e.volumeUsers(ctx, mp.Name); len(users) > 0 {
			continue
		}
		if err := vols.Remove(ctx, mp.Name); err == nil {
			e.Event(ctx, "volume", "destroy", mp.Name, map[string]string{"driver": "local"})
		}
	}
}

// volumeUsers lists the IDs of the containers that use volume name.
func (e *Engine) volumeUsers(ctx context.Context, name string) ([]string, error) {
	var users []string
	err := e.eachContainer(ctx, func(c *Container) {
		if slices.ContainsFunc(c.Mounts, func(mp container.MountPoint) bool {
			return mp.Type == mount.TypeVolume && mp.Name == name
		}) {
			users = append(users, c.ID)
		}
	})
	return users, err
}

// RemoveWhenDone removes an --rm container as soon as its shim has
// finished with it (unmounted, deleted from the runtime): what the
// command of a foreground `run --rm` does itself, sooner than the shim's
// exit command would. A container already gone is no error.
func (e *Engine) RemoveWhenDone(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		st, err := shim.ReadState(e.containerDir(id))
		if err != nil || !st.ShimAlive() || st.Status != shim.StatusExited {
			break
		}
		if err := st.WaitGone(ctx); err != nil {
			return err
		}
	}
	err := e.RemoveContainer(ctx, id, RemoveOptions{Force: true, Volumes: true})
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// WithdrawExitClaim undoes StartOptions.RemoveAfter: the shim's exit
// command will remove the --rm container after all (a detach).
func (e *Engine) WithdrawExitClaim(id string) {
	shim.WithdrawExitClaim(e.bundleDir(id))
}
