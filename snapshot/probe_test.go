package snapshot

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProbeLeftovers: a probe killed with its test overlay still mounted is
// unmounted and removed by the next open, and a successful probe is
// remembered for this kernel.
func TestProbeLeftovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := t.TempDir()
	stale := filepath.Join(root, "probe-dead")
	if err := os.MkdirAll(filepath.Join(stale, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(stale, "m"), "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(stale, "m"), unix.MNT_DETACH) })
	o, err := NewOverlay(root)
	if err != nil {
		t.Fatalf("NewOverlay: %v", err)
	}
	o.Close()
	if _, err := os.Lstat(stale); err == nil {
		t.Errorf("stale probe directory %s survived the next open", stale)
	}
	if _, err := os.Stat(filepath.Join(root, "probe.json")); err != nil {
		t.Errorf("probe result not remembered: %v", err)
	}
	// With the result remembered, opening mounts no test overlay.
	before, _ := os.ReadFile("/proc/self/mountinfo")
	o, err = NewOverlay(root)
	if err != nil {
		t.Fatalf("NewOverlay again: %v", err)
	}
	o.Close()
	if dirs, _ := filepath.Glob(filepath.Join(root, "probe-*")); len(dirs) != 0 {
		t.Errorf("second open probed again: %v", dirs)
	}
	after, _ := os.ReadFile("/proc/self/mountinfo")
	if len(after) != len(before) {
		t.Errorf("mount table changed across a cached open")
	}
}
