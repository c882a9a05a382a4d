package engine

import (
	"context"
	"os"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
)

// TestCreatePresetID: an ID chosen ahead (PrestartMonitor) must have the
// shape of berth's IDs and be unused.
func TestCreatePresetID(t *testing.T) {
	e, err := New(Config{Root: t.TempDir(), RunRoot: t.TempDir(), StorageDriver: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	req := func(id string) CreateRequest {
		return CreateRequest{ID: id, Config: &container.Config{Image: "busybox"}}
	}
	for _, bad := range []string{"../../etc", "ABC", newID()[:63], newID() + "0"} {
		if _, err := e.Create(context.Background(), req(bad)); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ID %q: %v, want invalid argument", bad, err)
		}
	}
	used := newID()
	if err := os.MkdirAll(e.containerDir(used), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Create(context.Background(), req(used)); !errdefs.IsConflict(err) {
		t.Errorf("an ID in use: %v, want conflict", err)
	}
	// A fresh one passes these checks: the missing image is what stops it.
	if _, err := e.Create(context.Background(), req(newID())); !errdefs.IsNotFound(err) {
		t.Errorf("a fresh ID: %v, want the image not found", err)
	}
}
