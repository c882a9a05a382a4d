package engine_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/internal/testenv"
)

func TestEvent(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	var logged bytes.Buffer
	e, err := engine.New(engine.Config{Root: root, RunRoot: t.TempDir(), StorageDriver: "vfs",
		Log: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if e.EventsPath() != filepath.Join(root, "events.log") {
		t.Errorf("EventsPath = %s", e.EventsPath())
	}
	attrs := map[string]string{"name": "web", "image": "busybox"}
	e.Event(ctx, events.ContainerEventType, "create", "c0ffee", attrs)
	attrs["name"] = "changed after the call"
	var got []events.Message
	if err := events.Read(ctx, e.EventsPath(), events.ReadOptions{}, func(m events.Message) error {
		got = append(got, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("read %d events, want 1", len(got))
	}
	m := got[0]
	if m.Type != "container" || m.Action != "create" || m.Status != "create" || m.ID != "c0ffee" || m.From != "busybox" ||
		m.Actor.ID != "c0ffee" || m.Actor.Attributes["name"] != "web" || m.Scope != "local" || m.TimeNano == 0 {
		t.Errorf("event %+v", m)
	}
	// A log that cannot be written costs the event, not the operation.
	if err := os.Remove(e.EventsPath()); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.EventsPath(), 0o700); err != nil {
		t.Fatal(err)
	}
	e.Event(ctx, events.ContainerEventType, "start", "c0ffee", nil)
	if !strings.Contains(logged.String(), "record event") || !strings.Contains(logged.String(), "action=start") {
		t.Errorf("the failure was not logged: %q", logged.String())
	}
}
