package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"golang.org/x/sys/unix"
)

func mounted(t *testing.T, path string) bool {
	t.Helper()
	ok, err := isMountPoint(path)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(unescapeMountinfo(f[4]), dir) {
			out = append(out, f[4])
		}
	}
	return out
}

// cleanupMounts takes anything a failed test left mounted off the store.
func cleanupMounts(t *testing.T, s *Store) {
	t.Cleanup(func() {
		es, _ := os.ReadDir(s.Dir())
		for _, e := range es {
			unmountData(filepath.Join(s.Dir(), e.Name(), dataDir))
		}
	})
}

func TestMountTmpfs(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	s := newStore(t)
	cleanupMounts(t, s)
	v, err := s.Create(ctx, "scratch", CreateOptions{Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0750,uid=1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if mounted(t, v.Mountpoint) {
		t.Fatal("mounted at create")
	}
	p, err := s.Mount(ctx, "scratch")
	if err != nil || p != v.Mountpoint {
		t.Fatalf("Mount = %q, %v", p, err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(p, &sfs); err != nil || sfs.Type != unix.TMPFS_MAGIC || sfs.Blocks*uint64(sfs.Bsize) != 1<<20 {
		t.Errorf("statfs %s: type %#x, %d blocks of %d: %v", p, sfs.Type, sfs.Blocks, sfs.Bsize, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o750 || fi.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("tmpfs root: %v %v", fi.Mode(), err)
	}
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second user shares the one mount.
	if _, err := s.Mount(ctx, "scratch"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Mounts(ctx, "scratch"); err != nil || n != 2 {
		t.Errorf("Mounts = %d, %v", n, err)
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if mounted(t, p) {
		t.Fatal("Mount stacked a second tmpfs")
	}
	// The mount went away behind the store's back (a reboot): the count
	// went with it, and the next Mount mounts afresh.
	if n, err := s.Mounts(ctx, "scratch"); err != nil || n != 0 {
		t.Errorf("Mounts of an unmounted volume = %d, %v", n, err)
	}
	for range 2 {
		if _, err := s.Mount(ctx, "scratch"); err != nil || !mounted(t, p) {
			t.Fatalf("Mount of a volume whose mount went away: %v", err)
		}
	}
	if n, err := s.Mounts(ctx, "scratch"); err != nil || n != 2 {
		t.Errorf("Mounts = %d, %v", n, err)
	}
	os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644)
	if err := s.Unmount(ctx, "scratch"); err != nil {
		t.Fatal(err)
	}
	if !mounted(t, p) {
		t.Fatal("unmounted while a second Mount holds it")
	}
	if _, err := os.Stat(filepath.Join(p, "f")); err != nil {
		t.Errorf("data gone while mounted: %v", err)
	}
	err = s.Remove(ctx, "scratch")
	if !errdefs.IsConflict(err) || err.Error() != "remove scratch: volume has active mounts" {
		t.Errorf("Remove while mounted: %v", err)
	}
	if err := s.Unmount(ctx, "scratch"); err != nil {
		t.Fatal(err)
	}
	if mounted(t, p) {
		t.Fatal("still mounted after the last Unmount")
	}
	if _, err := os.Stat(filepath.Join(p, "f")); !os.IsNotExist(err) {
		t.Errorf("tmpfs data outlived the mount: %v", err)
	}
	if err := s.Unmount(ctx, "scratch"); err != nil {
		t.Errorf("an Unmount too many: %v", err)
	}
	if n, err := s.Mounts(ctx, "scratch"); err != nil || n != 0 {
		t.Errorf("Mounts after an Unmount too many = %d, %v", n, err)
	}
	if err := s.Remove(ctx, "scratch"); err != nil {
		t.Fatal(err)
	}
}

func TestMountPlain(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	v, _ := s.Create(ctx, "plain", CreateOptions{})
	p, err := s.Mount(ctx, "plain")
	if err != nil || p != v.Mountpoint {
		t.Fatalf("Mount = %q, %v", p, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "plain", countFile)); !os.IsNotExist(err) {
		t.Errorf("a plain volume counts mounts: %v", err)
	}
	if err := s.Unmount(ctx, "plain"); err != nil {
		t.Error(err)
	}
	if _, err := s.Mount(ctx, "nosuch"); !errdefs.IsNotFound(err) || err.Error() != "get nosuch: no such volume" {
		t.Errorf("Mount of nothing: %v", err)
	}
	if err := s.Unmount(ctx, "nosuch"); !errdefs.IsNotFound(err) {
		t.Errorf("Unmount of nothing: %v", err)
	}
}

func TestMountFails(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	s := newStore(t)
	cleanupMounts(t, s)
	v, err := s.Create(ctx, "bad", CreateOptions{Options: map[string]string{"type": "nosuchfs", "device": "x", "o": "password=hunter2"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Mount(ctx, "bad")
	if err == nil || !strings.Contains(err.Error(), "mount bad: failed to mount local volume") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Mount of an unknown filesystem: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "bad", countFile)); !os.IsNotExist(err) || mounted(t, v.Mountpoint) {
		t.Errorf("a failed Mount counted: %v", err)
	}
}

// TestRemoveBindVolume: a volume that binds a host directory, left
// mounted with its count lost, is unmounted by Remove
// before the volume's files go, so the host directory keeps its files.
func TestRemoveBindVolume(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	s := newStore(t)
	cleanupMounts(t, s)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "precious"), []byte("keep me"), 0o644)
	v, err := s.Create(ctx, "hostdir", CreateOptions{Options: map[string]string{"type": "none", "device": host, "o": "bind"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Mount(ctx, "hostdir")
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(p, "precious")); err != nil || string(data) != "keep me" {
		t.Fatalf("bind volume shows %q, %v", data, err)
	}
	// The holder died and its count was lost.
	if err := os.Remove(filepath.Join(s.Dir(), "hostdir", countFile)); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "hostdir"); err != nil {
		t.Fatal(err)
	}
	if ms := mountsUnder(t, s.Dir()); len(ms) > 0 || v.Mountpoint == "" {
		t.Errorf("Remove left mounts: %v", ms)
	}
	if data, err := os.ReadFile(filepath.Join(host, "precious")); err != nil || string(data) != "keep me" {
		t.Errorf("Remove deleted the host directory's files: %q, %v", data, err)
	}
}

// TestRemoveStaleCount: a count left by holders whose mount is gone (a
// reboot) does not keep the volume from being removed.
func TestRemoveStaleCount(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	s := newStore(t)
	cleanupMounts(t, s)
	if _, err := s.Create(ctx, "stale", CreateOptions{Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Mount(ctx, "stale")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(p, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "stale"); err != nil {
		t.Errorf("Remove with a stale count: %v", err)
	}
}
