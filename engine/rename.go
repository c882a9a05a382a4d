package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/errdefs"
)

// Rename gives a container a new name, as `docker rename` does, running
// or not. The new name is reserved first (under the names lock, so that
// no create or other rename takes it meanwhile), then the record is
// rewritten atomically, then the old name is let go: a rename killed
// half-way leaves the container reachable by its recorded name.
func (e *Engine) Rename(ctx context.Context, ref, newName string) error {
	if ref == "" || newName == "" {
		return errorf(errdefs.ErrInvalidArgument, "Neither old nor new names may be empty")
	}
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	l, err := e.lock(ctx, c.ID)
	if err != nil {
		return err
	}
	defer l.Unlock()
	if c, err = e.loadContainer(c.ID); err != nil {
		return err // removed while we waited
	}
	if !strings.HasPrefix(newName, "/") {
		newName = "/" + newName
	}
	if newName == "/"+c.Name {
		return errorf(errdefs.ErrInvalidArgument, "Renaming a container with the same name as its current name")
	}
	name, err := checkName(newName)
	if err != nil {
		return fmt.Errorf("Error when allocating new name: %w", err)
	}
	if err := e.reserveName(ctx, name, c.ID); err != nil {
		return fmt.Errorf("Error when allocating new name: %w", err)
	}
	old := c.Name
	c.Name = name
	if err := e.saveContainer(c); err != nil {
		e.dropName(ctx, name, c.ID)
		return err
	}
	e.dropName(ctx, old, c.ID)
	e.containerEvent(ctx, c, "rename", map[string]string{"oldName": "/" + old})
	return nil
}

// dropName releases name from id under the names lock; a cancelled ctx
// does not leave the name held.
func (e *Engine) dropName(ctx context.Context, name, id string) {
	l, err := e.lock(context.WithoutCancel(ctx), "names")
	if err != nil {
		return
	}
	defer l.Unlock()
	e.releaseName(name, id)
}
