package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/mount"
	"golang.org/x/sys/unix"
)

// slowBackend blocks in fill until released, like the naive driver copying
// a large parent.
type slowBackend struct {
	filling chan string   // receives the new-* directory being filled
	release chan struct{} // closed to let fill finish
}

func (b *slowBackend) fill(ctx context.Context, dir string, kind Kind, parents []string) error {
	b.filling <- dir
	<-b.release
	return nil
}

func (b *slowBackend) mounts(id uint64, kind Kind, parents []string) []mount.Mount { return nil }

// TestBuildOutsideLock checks that a snapshot being built holds no lock on
// the metadata (other processes carry on) and that another process opening
// the root meanwhile leaves the directory being built alone.
func TestBuildOutsideLock(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	b := &slowBackend{filling: make(chan string), release: make(chan struct{})}
	s, err := openStore(root, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := s.create(ctx, KindActive, "slow", "")
		done <- err
	}()
	dir := <-b.filling

	// The metadata file is free: a write lock is ours at once.
	f, err := os.OpenFile(filepath.Join(root, "metadata.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("metadata locked while a snapshot is being built: %v", err)
	}
	f.Close()

	// Another opener's cleanup sees a locked new-* and leaves it.
	other, err := openStore(root, &slowBackend{}, []Option{WithTimeout(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("cleanup removed %s while it was being built: %v", dir, err)
	}
	if _, err := other.Stat(ctx, "slow"); !errdefs.IsNotFound(err) {
		t.Errorf("Stat(slow) before it is recorded: err = %v, want ErrNotFound", err)
	}

	close(b.release)
	if err := <-done; err != nil {
		t.Fatalf("create: %v", err)
	}
	if i, err := other.Stat(ctx, "slow"); err != nil || i.Kind != KindActive {
		t.Errorf("Stat(slow) from the other store = %+v, %v", i, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after being renamed into place: %v", dir, err)
	}
}

// TestLockTimeout checks the error of a call that cannot have the metadata
// lock in time, and that ctx's deadline shortens the wait.
func TestLockTimeout(t *testing.T) {
	root := t.TempDir()
	s, err := openStore(root, &slowBackend{}, []Option{WithTimeout(200 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "metadata.db")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Stat(context.Background(), "x")
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), path) {
		t.Errorf("Stat with the lock held elsewhere: err = %v, want ErrUnavailable naming %s", err, path)
	}
	if took := time.Since(start); took < 150*time.Millisecond || took > 2*time.Second {
		t.Errorf("gave up after %v, want about 200ms", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := s.Stat(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 150*time.Millisecond {
		t.Errorf("Stat with a 50ms ctx: err = %v after %v", err, time.Since(start))
	}
}

// TestClose checks that Close is idempotent and that a closed snapshotter
// refuses calls.
func TestClose(t *testing.T) {
	s, err := openStore(t.TempDir(), &slowBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Stat(context.Background(), "x"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Stat after Close: err = %v, want ErrFailedPrecondition", err)
	}
}
