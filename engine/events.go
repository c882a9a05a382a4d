package engine

import (
	"context"
	"path/filepath"

	"github.com/berth-dev/berth/events"
)

// EventsPath is the engine's event log, which `berth events` reads; every
// berth process appends to it (package events).
func (e *Engine) EventsPath() string { return filepath.Join(e.root, "events.log") }

// Event records that action happened to the object id of type typ
// ("container", "image", "volume", "network") with Docker's attributes
// (for a container: "name", "image", its labels; "exitCode" for die).
// It never fails the caller's operation: a log that cannot be written is
// reported to the engine's logger and the event is lost.
func (e *Engine) Event(ctx context.Context, typ, action, id string, attrs map[string]string) {
	if err := events.Append(e.EventsPath(), events.New(typ, action, id, attrs)); err != nil {
		e.log.WarnContext(ctx, "record event", "type", typ, "action", action, "id", id, "err", err)
	}
}
