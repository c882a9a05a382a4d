package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func statT(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// copyTree copies the tree src into the existing directory dst, keeping
// modes, owners, xattrs, times, hardlinks, symlinks, fifos and device nodes;
// sockets are skipped (they are meaningless without their listener). No
// symlink is followed. src is a snapshot this package owns; dst is new.
func copyTree(ctx context.Context, dst, src string) error {
	links := map[[2]uint64]string{}
	type dirTime struct {
		path string
		ts   []unix.Timespec
	}
	var dirs []dirTime
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		mode := st.Mode & unix.S_IFMT
		if mode != unix.S_IFDIR && st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok {
				return os.Link(first, target)
			}
			links[key] = target
		}
		switch mode {
		case unix.S_IFDIR:
			if rel != "." {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			}
		case unix.S_IFREG:
			if err := copyFile(target, p); err != nil {
				return err
			}
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return &os.PathError{Op: "mknod", Path: target, Err: err}
			}
		case unix.S_IFSOCK:
			return nil
		}
		if err := unix.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return &os.PathError{Op: "lchown", Path: target, Err: err}
		}
		if mode != unix.S_IFLNK {
			if err := unix.Chmod(target, st.Mode&0o7777); err != nil {
				return &os.PathError{Op: "chmod", Path: target, Err: err}
			}
		}
		if err := copyXattrs(target, p); err != nil {
			return err
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if mode == unix.S_IFDIR {
			dirs = append(dirs, dirTime{target, ts})
			return nil
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "utimensat", Path: target, Err: err}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, dirs[i].ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("copy %s: %w", src, &os.PathError{Op: "utimensat", Path: dirs[i].path, Err: err})
		}
	}
	return nil
}

func copyFile(dst, src string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in) // copy_file_range where the filesystem has it
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func copyXattrs(dst, src string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return err
	}
	list := make([]byte, size)
	n, err := unix.Llistxattr(src, list)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(list[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		buf := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(src, name, buf)
		if err != nil {
			return &os.PathError{Op: "lgetxattr " + name, Path: src, Err: err}
		}
		if err := unix.Lsetxattr(dst, name, buf[:vn], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return &os.PathError{Op: "lsetxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}
