package volume

import (
	"context"
	"os"
	"path/filepath"
	"slices"
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
	p, err := s.Mount(ctx, "scratch", "c1")
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
	// A second user and a repeated Mount share the one mount.
	for _, ref := range []string{"c2", "c1"} {
		if _, err := s.Mount(ctx, "scratch", ref); err != nil {
			t.Fatal(err)
		}
	}
	if refs, err := s.Refs(ctx, "scratch"); err != nil || !slices.Equal(refs, []string{"c1", "c2"}) {
		t.Errorf("Refs = %v, %v", refs, err)
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if mounted(t, p) {
		t.Fatal("Mount stacked a second tmpfs")
	}
	// The mount went away behind the store's back (a reboot): its holds
	// went with it, and the next Mount mounts afresh.
	if refs, err := s.Refs(ctx, "scratch"); err != nil || len(refs) != 0 {
		t.Errorf("Refs of a volume whose mount is gone = %v, %v", refs, err)
	}
	for _, ref := range []string{"c1", "c2"} {
		if _, err := s.Mount(ctx, "scratch", ref); err != nil || !mounted(t, p) {
			t.Fatalf("Mount of a volume whose mount went away: %v", err)
		}
	}
	if refs, err := s.Refs(ctx, "scratch"); err != nil || !slices.Equal(refs, []string{"c1", "c2"}) {
		t.Errorf("Refs after remounting = %v, %v", refs, err)
	}
	os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644)
	if err := s.Unmount(ctx, "scratch", "c1"); err != nil {
		t.Fatal(err)
	}
	if !mounted(t, p) {
		t.Fatal("unmounted while c2 holds it")
	}
	if _, err := os.Stat(filepath.Join(p, "f")); err != nil {
		t.Errorf("data gone while mounted: %v", err)
	}
	err = s.Remove(ctx, "scratch")
	if !errdefs.IsConflict(err) || err.Error() != "remove scratch: volume has active mounts" {
		t.Errorf("Remove while mounted: %v", err)
	}
	if err := s.Unmount(ctx, "scratch", "c2"); err != nil {
		t.Fatal(err)
	}
	if mounted(t, p) {
		t.Fatal("still mounted after the last Unmount")
	}
	if _, err := os.Stat(filepath.Join(p, "f")); !os.IsNotExist(err) {
		t.Errorf("tmpfs data outlived the mount: %v", err)
	}
	if err := s.Unmount(ctx, "scratch", "c2"); err != nil {
		t.Errorf("Unmount of a ref that holds nothing: %v", err)
	}
	if err := s.Remove(ctx, "scratch"); err != nil {
		t.Fatal(err)
	}
}

func TestMountPlain(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	v, _ := s.Create(ctx, "plain", CreateOptions{})
	p, err := s.Mount(ctx, "plain", "c1")
	if err != nil || p != v.Mountpoint {
		t.Fatalf("Mount = %q, %v", p, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "plain", refsFile)); !os.IsNotExist(err) {
		t.Errorf("a plain volume counts mounts: %v", err)
	}
	if err := s.Unmount(ctx, "plain", "c1"); err != nil {
		t.Error(err)
	}
	if _, err := s.Mount(ctx, "nosuch", "c1"); !errdefs.IsNotFound(err) || err.Error() != "get nosuch: no such volume" {
		t.Errorf("Mount of nothing: %v", err)
	}
	if err := s.Unmount(ctx, "nosuch", "c1"); !errdefs.IsNotFound(err) {
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
	_, err = s.Mount(ctx, "bad", "c1")
	if err == nil || !strings.Contains(err.Error(), "mount bad: failed to mount local volume") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Mount of an unknown filesystem: %v", err)
	}
	if refs, _ := s.Refs(ctx, "bad"); len(refs) != 0 || mounted(t, v.Mountpoint) {
		t.Errorf("a failed Mount left refs %v", refs)
	}
	if _, err := s.Mount(ctx, "bad", ""); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Mount without a ref: %v", err)
	}
}

// TestRemoveBindVolume: a volume that binds a host directory, left
// mounted by a process that died without Unmount, is unmounted by Remove
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
	p, err := s.Mount(ctx, "hostdir", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(p, "precious")); err != nil || string(data) != "keep me" {
		t.Fatalf("bind volume shows %q, %v", data, err)
	}
	// The holder died and its count was lost.
	if err := os.Remove(filepath.Join(s.Dir(), "hostdir", refsFile)); err != nil {
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

// TestRemoveStaleRefs: holds recorded by users whose mount is gone (a
// reboot) do not keep the volume from being removed.
func TestRemoveStaleRefs(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	s := newStore(t)
	cleanupMounts(t, s)
	if _, err := s.Create(ctx, "stale", CreateOptions{Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.Mount(ctx, "stale", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(p, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "stale"); err != nil {
		t.Errorf("Remove with stale refs: %v", err)
	}
}
