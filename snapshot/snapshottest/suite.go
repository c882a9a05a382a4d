// Package snapshottest is the conformance suite every snapshot.Snapshotter
// must pass. It mounts what the snapshotter returns, so it needs root and a
// real kernel; it skips otherwise.
package snapshottest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/snapshot"
	"golang.org/x/sys/unix"
)

// New opens a snapshotter of the implementation under test at root, passing
// opts on to it. The suite calls it again on the same root to test
// reopening, and in child processes to test sharing a root.
type New func(t *testing.T, root string, opts ...snapshot.Option) snapshot.Snapshotter

// Suite runs the conformance tests against the implementation that open
// makes, as subtests named after name.
func Suite(t *testing.T, name string, open New) {
	if os.Geteuid() != 0 {
		t.Skip("snapshot conformance suite requires root")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, root string, open New)
	}{
		{"Chain", testChain},
		{"RemoveParent", testRemoveParent},
		{"StatWalk", testStatWalk},
		{"Errors", testErrors},
		{"Usage", testUsage},
		{"UpperDir", testUpperDir},
		{"Reopen", testReopen},
		{"CrashedPrepare", testCrashedPrepare},
		{"MultiProcess", testMultiProcess},
		{"LockWait", testLockWait},
	}
	for _, tt := range tests {
		t.Run(name+"/"+tt.name, func(t *testing.T) {
			if os.Getenv(envRole) != "" {
				child(t, open) // re-executed by testMultiProcess or testLockWait
				return
			}
			tt.fn(t, t.TempDir(), open)
		})
	}
}

// change is one edit made through a snapshot's mounts: write body to path,
// or remove path when body is "-".
type change struct{ path, body string }

// write mounts ms, applies the changes through the mount and unmounts.
func write(t *testing.T, ms []mount.Mount, changes ...change) {
	t.Helper()
	err := mount.WithTempMount(context.Background(), ms, func(root string) error {
		for _, c := range changes {
			p := filepath.Join(root, c.path)
			if c.body == "-" {
				if err := os.RemoveAll(p); err != nil {
					return err
				}
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write through %v: %v", ms, err)
	}
}

// tree returns path=content for every file under the mounts, dirs as "d/".
func tree(t *testing.T, ms []mount.Mount) string {
	t.Helper()
	var lines []string
	err := mount.WithTempMount(context.Background(), ms, func(root string) error {
		return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() {
				lines = append(lines, rel+"/")
				return nil
			}
			b, err := os.ReadFile(p)
			lines = append(lines, rel+"="+string(b))
			return err
		})
	})
	if err != nil {
		t.Fatalf("read %v: %v", ms, err)
	}
	sort.Strings(lines)
	return strings.Join(lines, " ")
}

// mountsOK returns the mounts of a call that must succeed.
func mountsOK(t *testing.T) func([]mount.Mount, error) []mount.Mount {
	return func(ms []mount.Mount, err error) []mount.Mount {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
}

func ok[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// layer prepares key on parent, applies changes through the mounts and
// commits it as name.
func layer(t *testing.T, s snapshot.Snapshotter, name, parent string, changes ...change) {
	t.Helper()
	ctx := context.Background()
	ms := mountsOK(t)(s.Prepare(ctx, name+"-active", parent))
	write(t, ms, changes...)
	if err := s.Commit(ctx, name, name+"-active"); err != nil {
		t.Fatalf("Commit(%s): %v", name, err)
	}
}

// threeLayers builds a chain base ← mid ← top with additions, changes and
// deletions of files and directories at each level.
func threeLayers(t *testing.T, s snapshot.Snapshotter) {
	layer(t, s, "base", "", change{"a", "1"}, change{"b", "1"}, change{"d/x", "1"}, change{"d/y", "1"}, change{"e/z", "1"})
	layer(t, s, "mid", "base", change{"a", "2"}, change{"b", "-"}, change{"d", "-"}, change{"c", "2"})
	layer(t, s, "top", "mid", change{"c", "3"}, change{"d/y", "3"}, change{"e/z", "-"}, change{"e/n", "3"})
}

const wantTop = "a=2 c=3 d/ d/y=3 e/ e/n=3"

func testChain(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root)
	threeLayers(t, s)
	ms := mountsOK(t)(s.View(ctx, "v", "top"))
	if got := tree(t, ms); got != wantTop {
		t.Errorf("view of top = %q, want %q", got, wantTop)
	}
	if got, want := tree(t, mountsOK(t)(s.View(ctx, "vb", "base"))), "a=1 b=1 d/ d/x=1 d/y=1 e/ e/z=1"; got != want {
		t.Errorf("view of base = %q, want %q (later layers leaked down)", got, want)
	}
	err := mount.WithTempMount(ctx, ms, func(root string) error {
		return os.WriteFile(filepath.Join(root, "new"), nil, 0o644)
	})
	if !errors.Is(err, unix.EROFS) {
		t.Errorf("write to a view: err = %v, want EROFS", err)
	}
	// A container on top sees the chain and writes only to its own layer.
	cms := mountsOK(t)(s.Prepare(ctx, "ctr", "top"))
	write(t, cms, change{"a", "ctr"}, change{"c", "-"})
	if got, want := tree(t, cms), "a=ctr d/ d/y=3 e/ e/n=3"; got != want {
		t.Errorf("container = %q, want %q", got, want)
	}
	if got := tree(t, mountsOK(t)(s.Mounts(ctx, "v"))); got != wantTop {
		t.Errorf("view of top after container writes = %q, want %q", got, wantTop)
	}
}

func testRemoveParent(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root)
	threeLayers(t, s)
	mountsOK(t)(s.View(ctx, "v", "top"))
	for _, k := range []string{"base", "mid", "top"} {
		if err := s.Remove(ctx, k); !errdefs.IsFailedPrecondition(err) {
			t.Errorf("Remove(%s) with a child: err = %v, want ErrFailedPrecondition", k, err)
		}
	}
	for _, k := range []string{"v", "top", "mid", "base"} {
		if err := s.Remove(ctx, k); err != nil {
			t.Errorf("Remove(%s): %v", k, err)
		}
		if _, err := s.Stat(ctx, k); !errdefs.IsNotFound(err) {
			t.Errorf("Stat(%s) after Remove: err = %v, want ErrNotFound", k, err)
		}
	}
	left, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	if len(left) != 0 {
		t.Errorf("directories left after removing everything: %v", left)
	}
}

func testStatWalk(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root)
	threeLayers(t, s)
	mountsOK(t)(s.View(ctx, "v", "top"))
	mountsOK(t)(s.Prepare(ctx, "a", "mid"))
	want := map[string]snapshot.Info{
		"base": {Key: "base", Kind: snapshot.KindCommitted},
		"mid":  {Key: "mid", Parent: "base", Kind: snapshot.KindCommitted},
		"top":  {Key: "top", Parent: "mid", Kind: snapshot.KindCommitted},
		"v":    {Key: "v", Parent: "top", Kind: snapshot.KindView},
		"a":    {Key: "a", Parent: "mid", Kind: snapshot.KindActive},
	}
	for k, w := range want {
		got := ok[snapshot.Info](t)(s.Stat(ctx, k))
		if got.Key != w.Key || got.Parent != w.Parent || got.Kind != w.Kind || got.Created.IsZero() {
			t.Errorf("Stat(%s) = %+v, want %+v", k, got, w)
		}
	}
	seen := map[string]bool{}
	err := s.Walk(ctx, func(i snapshot.Info) error {
		seen[i.Key] = true
		if w := want[i.Key]; i.Kind != w.Kind || i.Parent != w.Parent {
			t.Errorf("Walk gave %+v, want %+v", i, w)
		}
		return nil
	})
	if err != nil || len(seen) != len(want) {
		t.Errorf("Walk saw %v, %v; want %d snapshots", seen, err, len(want))
	}
	stop := errors.New("stop")
	if err := s.Walk(ctx, func(snapshot.Info) error { return stop }); err != stop {
		t.Errorf("Walk did not return fn's error: %v", err)
	}
}

func testErrors(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root)
	layer(t, s, "base", "", change{"a", "1"})
	mountsOK(t)(s.Prepare(ctx, "act", "base"))
	mountsOK(t)(s.View(ctx, "view", "base"))
	checks := []struct {
		what string
		err  error
		is   func(error) bool
	}{
		{"Prepare existing key", second(s.Prepare(ctx, "act", "")), errdefs.IsAlreadyExists},
		{"Prepare on committed name", second(s.Prepare(ctx, "base", "")), errdefs.IsAlreadyExists},
		{"Prepare on missing parent", second(s.Prepare(ctx, "x", "nope")), errdefs.IsNotFound},
		{"Prepare on active parent", second(s.Prepare(ctx, "x", "act")), errdefs.IsFailedPrecondition},
		{"View of a view", second(s.View(ctx, "x", "view")), errdefs.IsFailedPrecondition},
		{"Commit a view", s.Commit(ctx, "x", "view"), errdefs.IsFailedPrecondition},
		{"Commit a committed", s.Commit(ctx, "x", "base"), errdefs.IsFailedPrecondition},
		{"Commit onto existing name", s.Commit(ctx, "base", "act"), errdefs.IsAlreadyExists},
		{"Stat missing", second(s.Stat(ctx, "nope")), errdefs.IsNotFound},
		{"Remove missing", s.Remove(ctx, "nope"), errdefs.IsNotFound},
		{"Mounts of committed", second(s.Mounts(ctx, "base")), errdefs.IsFailedPrecondition},
		{"UpperDir of view", second(s.UpperDir(ctx, "view")), errdefs.IsFailedPrecondition},
	}
	for _, c := range checks {
		if !c.is(c.err) {
			t.Errorf("%s: err = %v", c.what, c.err)
		}
	}
	if _, err := s.Stat(ctx, "x"); !errdefs.IsNotFound(err) {
		t.Errorf("a failed call left snapshot x behind: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func testUsage(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root)
	ms := mountsOK(t)(s.Prepare(ctx, "a", ""))
	empty := ok[int64](t)(s.Usage(ctx, "a"))
	write(t, ms, change{"big", strings.Repeat("x", 1<<20)})
	if got := ok[int64](t)(s.Usage(ctx, "a")); got < empty+1<<20 {
		t.Errorf("Usage after writing 1 MiB = %d, was %d", got, empty)
	}
	if err := s.Commit(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	if got := ok[int64](t)(s.Usage(ctx, "c")); got < 1<<20 {
		t.Errorf("Usage of committed = %d, want ≥ 1 MiB", got)
	}
}

func testUpperDir(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root)
	layer(t, s, "base", "", change{"a", "1"})
	mountsOK(t)(s.Prepare(ctx, "act", "base"))
	dir := ok[string](t)(s.UpperDir(ctx, "act"))
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "next", "act"); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, mountsOK(t)(s.View(ctx, "v", "next"))), "a=1 b=2"; got != want {
		t.Errorf("view after writing to UpperDir = %q, want %q", got, want)
	}
}

func testReopen(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root)
	threeLayers(t, s)
	mountsOK(t)(s.Prepare(ctx, "ctr", "top"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, root)
	if i := ok[snapshot.Info](t)(s.Stat(ctx, "ctr")); i.Kind != snapshot.KindActive || i.Parent != "top" {
		t.Errorf("after reopen Stat(ctr) = %+v", i)
	}
	if got := tree(t, mountsOK(t)(s.View(ctx, "v", "top"))); got != wantTop {
		t.Errorf("after reopen view of top = %q, want %q", got, wantTop)
	}
	layer(t, s, "more", "top", change{"m", "4"}) // ids keep counting
	if got := tree(t, mountsOK(t)(s.View(ctx, "v2", "more"))); got != wantTop+" m=4" {
		t.Errorf("after reopen new layer = %q", got)
	}
}

// testCrashedPrepare leaves what a Prepare killed half-way leaves (a new-*
// directory, an unrecorded snapshot directory, an rm-* directory) and
// expects the next open to clean it up without touching real snapshots.
func testCrashedPrepare(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root)
	layer(t, s, "base", "", change{"a", "1"})
	s.Close()
	junk := []string{"new-123/fs/file", "999/fs/file", "rm-7/fs/file"}
	for _, j := range junk {
		p := filepath.Join(root, "snapshots", j)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("junk"), 0o644)
	}
	s = open(t, root)
	for _, j := range junk {
		top := filepath.Join(root, "snapshots", strings.Split(j, "/")[0])
		if _, err := os.Stat(top); !os.IsNotExist(err) {
			t.Errorf("%s survived reopen: %v", top, err)
		}
	}
	if got := tree(t, mountsOK(t)(s.View(ctx, "v", "base"))); got != "a=1" {
		t.Errorf("base after cleanup = %q", got)
	}
}
