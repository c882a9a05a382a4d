package events

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatcher: inotify wakes a follower for changes to the log's two
// files, and not for the other files of the directory.
func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	w := watch(path)
	if w == nil {
		t.Fatal("no inotify watch")
	}
	defer w.close()
	wake, dead := w.channels()
	woken := func() bool {
		select {
		case <-wake:
			return true
		case <-dead:
			t.Fatal("watch ended")
		case <-time.After(300 * time.Millisecond):
		}
		return false
	}
	for _, step := range []struct {
		name string
		do   func() error
		want bool
	}{
		{"another file", func() error { return os.WriteFile(filepath.Join(dir, "meta.db"), []byte("x"), 0o600) }, false},
		{"create", func() error { return Append(path, New(ContainerEventType, "create", "a", nil)) }, true},
		{"append", func() error { return Append(path, New(ContainerEventType, "start", "a", nil)) }, true},
		{"rotate", func() error { return os.Rename(path, path+".1") }, true},
		{"another file again", func() error { return os.WriteFile(filepath.Join(dir, "meta.db"), []byte("y"), 0o600) }, false},
	} {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		if got := woken(); got != step.want {
			t.Errorf("%s: woken %v, want %v", step.name, got, step.want)
		}
		// One change may wake more than once (a rename is an event of the
		// directory and one of the file, read apart under load): what the
		// next step sees must be its own.
		for drained := true; drained; {
			select {
			case <-wake:
			case <-time.After(50 * time.Millisecond):
				drained = false
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dead:
	case <-time.After(2 * time.Second):
		t.Error("watch of a removed directory did not end")
	}
	w.close()
	w.close() // twice is harmless
	var nilw *watcher
	nilw.close()
	if a, b := nilw.channels(); a != nil || b != nil {
		t.Error("nil watcher has channels")
	}
}
