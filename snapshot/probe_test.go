package snapshot

import (
	"os"
	"path/filepath"
	"strings"
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
	// With the result remembered, opening mounts no test overlay. Only
	// the mounts under root count: other packages' tests mount and
	// unmount in the same namespace meanwhile.
	before := mountsUnder(t, root)
	o, err = NewOverlay(root)
	if err != nil {
		t.Fatalf("NewOverlay again: %v", err)
	}
	o.Close()
	if dirs, _ := filepath.Glob(filepath.Join(root, "probe-*")); len(dirs) != 0 {
		t.Errorf("second open probed again: %v", dirs)
	}
	if after := mountsUnder(t, root); after != before {
		t.Errorf("mounts under %s changed across a cached open:\n%s\nnow\n%s", root, before, after)
	}
}

// mountsUnder lists the lines of /proc/self/mountinfo that name a path
// under dir.
func mountsUnder(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, dir) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
