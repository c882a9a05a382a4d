package engine

import (
	"context"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/meta"
	"github.com/opencontainers/go-digest"
)

// imageUsers are the containers made from one image, as `rmi` weighs
// them: running ones (running, paused or restarting, Docker's IsRunning)
// and the others. IDs in the order of the containers directory.
type imageUsers struct {
	running, stopped []string
}

func (u imageUsers) any() string {
	if len(u.running) > 0 {
		return u.running[0]
	}
	if len(u.stopped) > 0 {
		return u.stopped[0]
	}
	return ""
}

// imageUsers finds the containers of image id.
func (e *Engine) imageUsers(ctx context.Context, id digest.Digest) (imageUsers, error) {
	var u imageUsers
	err := e.eachContainer(ctx, func(c *Container) {
		if c.Image != id.String() {
			return
		}
		st, err := e.state(c)
		switch {
		case err == nil && (st.Status == "running" || st.Status == "paused" || st.Status == "restarting"):
			u.running = append(u.running, c.ID)
		default:
			u.stopped = append(u.stopped, c.ID)
		}
	})
	return u, err
}

// usedImages is the set of image IDs some container was made from.
func (e *Engine) usedImages(ctx context.Context) (map[digest.Digest]bool, error) {
	used := map[digest.Digest]bool{}
	err := e.eachContainer(ctx, func(c *Container) {
		if d, err := digest.Parse(c.Image); err == nil {
			used[d] = true
		}
	})
	return used, err
}

// refuseUntag is docker's check before removing the name the user typed
// (arg) of image id: the last reference to an image a container uses
// goes only with force.
func (u imageUsers) refuseUntag(arg string, id digest.Digest, names []meta.Image, force bool) error {
	c := u.any()
	if force || c == "" || !singleReference(names) {
		return nil
	}
	return errorf(errdefs.ErrConflict, "conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
		arg, c[:12], shortID(id))
}

// refuseDelete is docker's check before deleting image id by its ID: never
// while a container runs from it, and a stopped one's only with force —
// which then untags the image and keeps it (keepImage). An image without
// names that a stopped container needs cannot be deleted at all.
func (u imageUsers) refuseDelete(id digest.Digest, names []meta.Image, force bool) error {
	if len(u.running) > 0 {
		return errorf(errdefs.ErrConflict, "conflict: unable to delete %s (cannot be forced) - image is being used by running container %s",
			shortID(id), u.running[0][:12])
	}
	if len(u.stopped) == 0 {
		return nil
	}
	named := false
	for _, n := range names {
		named = named || !Dangling(n)
	}
	switch {
	case !force && singleReference(names):
		return errorf(errdefs.ErrConflict, "conflict: unable to delete %s (must be forced) - image is being used by stopped container %s",
			shortID(id), u.stopped[0][:12])
	case force && !named:
		return errorf(errdefs.ErrConflict, "conflict: unable to delete %s (cannot be forced) - image is being used by stopped container %s",
			shortID(id), u.stopped[0][:12])
	}
	return nil
}

// keepImage keeps the image of rec, whose names tx has just removed, when
// a container still uses it: recorded under its ID, dangling, as Docker's
// containerd image store keeps it. The container needs its config to
// start again, and its snapshot stands on the image's layers.
func (u imageUsers) keepImage(tx *meta.Tx, rec meta.Image) error {
	if u.any() == "" {
		return nil
	}
	all, err := tx.ListImages()
	if err != nil {
		return err
	}
	if len(sameImage(all, rec.Config)) > 0 {
		return nil
	}
	return tx.PutImage(meta.Image{Name: rec.Config.String(), Target: rec.Target, Config: rec.Config, Platform: rec.Platform})
}
