package volume

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"golang.org/x/sys/unix"
)

var past = time.Date(2020, 2, 3, 4, 5, 6, 700, time.UTC)

// tree lists dir as "path mode uid:gid [-> target | size]" lines, walking
// without following links.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		line := rel + " " + fi.Mode().String() + " " + itoa(st.Uid) + ":" + itoa(st.Gid)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case fi.Mode().IsRegular():
			line += " " + itoa(fi.Size())
		case fi.Mode()&os.ModeDevice != 0:
			line += " dev " + itoa(st.Rdev)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func itoa[T uint32 | uint64 | int64 | int](n T) string { return strconv.FormatInt(int64(n), 10) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sourceTree makes a directory with one of everything CopyUp keeps.
func sourceTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o750))
	must(t, os.Chown(src, 999, 998))
	must(t, os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "sub", "deep", "file"), []byte("deep"), 0o640))
	must(t, os.Chown(filepath.Join(src, "sub", "deep", "file"), 123, 456))
	must(t, os.WriteFile(filepath.Join(src, "setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chown(filepath.Join(src, "setuid"), 1000, 1000))
	must(t, os.Chmod(filepath.Join(src, "setuid"), 0o4755|os.ModeSetuid))
	must(t, os.WriteFile(filepath.Join(src, "hard1"), []byte("linked"), 0o644))
	must(t, os.Link(filepath.Join(src, "hard1"), filepath.Join(src, "sub", "hard2")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(src, "abs-link")))
	must(t, os.Symlink("../../outside", filepath.Join(src, "sub", "rel-link")))
	must(t, os.Symlink("/", filepath.Join(src, "escape"))) // a directory link out of src
	must(t, os.Lchown(filepath.Join(src, "escape"), 7, 8))
	must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	must(t, unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Chmod(filepath.Join(src, "null"), 0o666))
	must(t, os.MkdirAll(filepath.Join(src, "ro"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "ro", "inside"), nil, 0o444))
	must(t, os.Chmod(filepath.Join(src, "ro"), 0o555))
	must(t, unix.Setxattr(filepath.Join(src, "sub", "deep", "file"), "user.note", []byte("hello"), 0))
	must(t, unix.Setxattr(filepath.Join(src, "sub"), "trusted.dir", []byte("d"), 0))
	must(t, unix.Lsetxattr(filepath.Join(src, "abs-link"), "trusted.link", []byte("l"), 0))
	filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			os.Chtimes(p, past, past)
		} else if err == nil {
			ts := unix.NsecToTimespec(past.UnixNano())
			unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
	// Directories last: filling them moved their times.
	for _, d := range []string{"sub/deep", "sub", "ro", "."} {
		must(t, os.Chtimes(filepath.Join(src, d), past, past))
	}
	return src
}

func TestCopyUp(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	src := sourceTree(t)
	dst := filepath.Join(t.TempDir(), "_data")
	must(t, os.Mkdir(dst, 0o755))
	if err := CopyUp(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	got, want := tree(t, dst), tree(t, src)
	if !slices.Equal(got, want) {
		t.Errorf("copy:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range []string{".", "sub", "sub/deep", "sub/deep/file", "setuid", "ro", "fifo", "null", "abs-link", "escape"} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(dst, p), &st))
		if mt := time.Unix(st.Mtim.Unix()); !mt.Equal(past) {
			t.Errorf("%s: mtime %v, want %v", p, mt, past)
		}
	}
	var a, b unix.Stat_t
	must(t, unix.Stat(filepath.Join(dst, "hard1"), &a))
	must(t, unix.Stat(filepath.Join(dst, "sub", "hard2"), &b))
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard links: inodes %d and %d, %d links", a.Ino, b.Ino, a.Nlink)
	}
	for _, x := range []struct{ path, name, want string }{
		{"sub/deep/file", "user.note", "hello"}, {"sub", "trusted.dir", "d"}, {"abs-link", "trusted.link", "l"},
	} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(dst, x.path), x.name, buf)
		if err != nil || string(buf[:n]) != x.want {
			t.Errorf("%s %s = %q, %v", x.path, x.name, buf[:max(n, 0)], err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dst, "sub", "deep", "file")); err != nil || string(data) != "deep" {
		t.Errorf("content %q, %v", data, err)
	}
	// The link out of src was copied as a link and not followed.
	if fi, err := os.Lstat(filepath.Join(dst, "escape")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("escape: %v %v", fi, err)
	}
	if n := len(got); n != 14 {
		t.Errorf("copied %d entries, want 14 (no more came through the escape link)", n)
	}
}

func TestCopyUpLeavesFilledVolume(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	src := sourceTree(t)
	dst := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dst, "mine"), []byte("user data"), 0o600))
	must(t, os.Chmod(dst, 0o711))
	before := tree(t, dst)
	if err := CopyUp(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dst); !slices.Equal(got, before) {
		t.Errorf("CopyUp changed a volume with data:\n%s", strings.Join(got, "\n"))
	}
}

func TestCopyUpSources(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	base := t.TempDir()
	dst := filepath.Join(base, "dst")
	must(t, os.Mkdir(dst, 0o755))
	empty := func() {
		t.Helper()
		if es, _ := os.ReadDir(dst); len(es) != 0 {
			t.Errorf("dst holds %d entries", len(es))
		}
	}

	if err := CopyUp(ctx, filepath.Join(base, "missing"), dst); err != nil {
		t.Errorf("missing src: %v", err)
	}
	empty()

	// src itself a link to a directory outside: refused, nothing read.
	outside := filepath.Join(base, "outside")
	must(t, os.Mkdir(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600))
	must(t, os.Symlink(outside, filepath.Join(base, "link")))
	if err := CopyUp(ctx, filepath.Join(base, "link"), dst); !errdefs.IsInvalidArgument(err) {
		t.Errorf("src a symlink: %v", err)
	}
	empty()

	must(t, os.WriteFile(filepath.Join(base, "file"), nil, 0o644))
	if err := CopyUp(ctx, filepath.Join(base, "file"), dst); !errdefs.IsInvalidArgument(err) {
		t.Errorf("src a file: %v", err)
	}
	empty()
}

// TestCopyUpInRoot: the path is resolved inside the container's root, so
// links in the image that point at / or climb with .. stay in the root.
func TestCopyUpInRoot(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc", "image-file"), []byte("mine"), 0o644))
	must(t, os.Symlink("/../../../../etc", filepath.Join(root, "data"))) // absolute, climbing
	must(t, os.Symlink("../../../../../", filepath.Join(root, "var")))   // relative, climbing
	must(t, os.MkdirAll(filepath.Join(root, "real", "sub"), 0o755))      //
	must(t, os.WriteFile(filepath.Join(root, "real", "sub", "x"), nil, 0o644))
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/data", []string{"image-file"}},
		{"data", []string{"image-file"}},
		{"/var/etc", []string{"image-file"}},
		{"/var/real/sub", []string{"x"}},
		{"/nothing/here", nil},
	} {
		dst := t.TempDir()
		if err := CopyUpInRoot(ctx, root, tt.path, dst); err != nil {
			t.Errorf("CopyUpInRoot %s: %v", tt.path, err)
			continue
		}
		es, _ := os.ReadDir(dst)
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("CopyUpInRoot %s copied %v, want %v", tt.path, names, tt.want)
		}
	}
}

// TestCopyUpFailureClears: a copy that fails half way (the volume's
// filesystem fills up) takes back what it wrote, so the next container
// sees an empty volume and copies again.
func TestCopyUpFailureClears(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	src := t.TempDir()
	for i := range 20 {
		must(t, os.WriteFile(filepath.Join(src, "small"+itoa(i)), []byte("x"), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("y"), 4<<20), 0o644))
	dst := t.TempDir()
	must(t, unix.Mount("tmpfs", dst, "tmpfs", 0, "size=1m"))
	defer unix.Unmount(dst, unix.MNT_DETACH)
	err := CopyUp(ctx, src, dst)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("CopyUp into a full volume: %v", err)
	}
	if es, _ := os.ReadDir(dst); len(es) != 0 {
		t.Errorf("a failed CopyUp left %d entries", len(es))
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := CopyUp(cctx, src, dst); err == nil {
		t.Errorf("CopyUp with a cancelled context succeeded")
	}
}
