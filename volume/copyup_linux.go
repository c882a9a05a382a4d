package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// maxCopyDepth bounds how deep CopyUp descends: two descriptors stay open
// per level, and no real image nests directories this deep.
const maxCopyDepth = 4096

// xattrSizeMax is the largest value an extended attribute can have (Linux XATTR_SIZE_MAX).
const xattrSizeMax = 64 << 10

// CopyUp fills the volume directory dst with a copy of the directory src
// when dst is empty, as Docker fills a volume from the image's content at
// the path it is mounted on. Docker does this whenever a container is
// created with an empty volume (not only the first time), unless the
// mount says nocopy; the caller decides when.
//
// The copy keeps modes, owners, times, extended attributes, symbolic
// links (copied as links, never followed), hard links within src, fifos
// and device nodes; sockets are skipped. dst itself takes src's mode,
// owner and times, so a volume on /var/lib/postgresql/data belongs to the
// image's postgres user. A missing src is not an error, and a dst with
// anything in it is left alone.
//
// src is the container's content and is not trusted: the walk is made of
// *at calls on directory descriptors, so a symbolic link in src can never
// lead the copy outside src, and a src whose last component is a symbolic
// link is refused. Its parent components are trusted; when src lies in a
// container's root filesystem use CopyUpInRoot, which resolves the path
// the way the container would. If the copy fails, what it put in dst is
// removed again.
func CopyUp(ctx context.Context, src, dst string) error {
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	return copyUpFrom(ctx, fd, err, src, dst)
}

// CopyUpInRoot is CopyUp of the directory at path inside root (a
// container's root filesystem), resolved as the container would resolve
// it: symbolic links are followed, but ".." and absolute targets stop at
// root (openat2 RESOLVE_IN_ROOT), so an image cannot point the copy at the
// host's files.
func CopyUpInRoot(ctx context.Context, root, p, dst string) error {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("copy up: %w", &os.PathError{Op: "open", Path: root, Err: err})
	}
	defer unix.Close(rfd)
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	for range 16 { // EAGAIN: a rename raced the lookup
		if fd, err = unix.Openat2(rfd, p, &how); err != unix.EAGAIN {
			break
		}
	}
	return copyUpFrom(ctx, fd, err, filepath.Join(root, p), dst)
}

func copyUpFrom(ctx context.Context, fd int, openErr error, src, dst string) error {
	switch {
	case openErr == unix.ENOENT:
		return nil // the image has nothing there
	case openErr == unix.ELOOP:
		return fmt.Errorf("copy up %s: source is a symbolic link: %w", src, errdefs.ErrInvalidArgument)
	case openErr == unix.ENOTDIR:
		return fmt.Errorf("copy up %s: not a directory: %w", src, errdefs.ErrInvalidArgument)
	case openErr != nil:
		return fmt.Errorf("copy up: %w", &os.PathError{Op: "open", Path: src, Err: openErr})
	}
	sf := os.NewFile(uintptr(fd), src)
	defer sf.Close()
	if empty, err := isEmptyDir(dst); err != nil || !empty {
		return err
	}
	df, err := openDir(unix.AT_FDCWD, dst)
	if err != nil {
		return fmt.Errorf("copy up: %w", err)
	}
	defer df.Close()
	c := copier{ctx: ctx, links: map[[2]uint64]string{}, root: int(df.Fd())}
	if err := c.dir(sf, df, "", 0); err != nil {
		clearDir(dst)
		return fmt.Errorf("copy up %s: %w", src, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(sf.Fd()), &st); err != nil {
		clearDir(dst)
		return fmt.Errorf("copy up %s: %w", src, err)
	}
	if err := c.dirMeta(sf, df, &st); err != nil {
		clearDir(dst)
		return fmt.Errorf("copy up %s: %w", src, err)
	}
	return nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("copy up: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("copy up: %w", err)
	}
	return len(names) == 0, nil
}

// clearDir removes everything in dir (os.RemoveAll never follows links).
func clearDir(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	for _, n := range names {
		os.RemoveAll(filepath.Join(dir, n))
	}
}

// openDir opens the directory name under dirfd without following a
// symbolic link in its last component.
func openDir(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// procPath names the file open on fd, for the calls that take no
// descriptor; the kernel resolves it to that very file.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// copier walks one copy. links maps a source inode with several links to
// the path (relative to dst) of its first copy; root is dst's descriptor.
type copier struct {
	ctx   context.Context
	links map[[2]uint64]string
	root  int
}

// dir copies the entries of src into dst; rel is their path under dst.
func (c *copier) dir(src, dst *os.File, rel string, depth int) error {
	if depth > maxCopyDepth {
		return fmt.Errorf("%s: directories nest deeper than %d: %w", rel, maxCopyDepth, errdefs.ErrInvalidArgument)
	}
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for {
		names, err := src.Readdirnames(1024)
		for _, name := range names {
			if err := c.ctx.Err(); err != nil {
				return err
			}
			if err := c.entry(sfd, dfd, name, path.Join(rel, name), depth); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
	}
}

// entry copies the entry name of the directory sfd into the directory dfd.
func (c *copier) entry(sfd, dfd int, name, rel string, depth int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil // gone since we listed it
		}
		return &os.PathError{Op: "lstat", Path: rel, Err: err}
	}
	kind := st.Mode & unix.S_IFMT
	if kind != unix.S_IFDIR && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := c.links[key]; ok {
			return c.link(first, dfd, name)
		}
		if kind != unix.S_IFSOCK {
			defer func() { c.links[key] = rel }()
		}
	}
	switch kind {
	case unix.S_IFDIR:
		return c.subdir(sfd, dfd, name, rel, depth, &st)
	case unix.S_IFREG:
		return c.file(sfd, dfd, name, rel, &st)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(sfd, name, buf)
		if err != nil {
			return &os.PathError{Op: "readlink", Path: rel, Err: err}
		}
		if err := unix.Symlinkat(string(buf[:n]), dfd, name); err != nil {
			return &os.PathError{Op: "symlink", Path: rel, Err: err}
		}
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: rel, Err: err}
		}
		if err := chmodNode(dfd, name, st.Mode); err != nil {
			return &os.PathError{Op: "chmod", Path: rel, Err: err}
		}
	default:
		return nil // a socket means nothing without its listener
	}
	// A link or node: owner, xattrs and times by name, never following.
	if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lchown", Path: rel, Err: err}
	}
	if err := copyXattrs(xattrPath{procPath(sfd) + "/" + name}, xattrPath{procPath(dfd) + "/" + name}); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return setTimes(dfd, name, &st, rel)
}

// chmodNode sets the mode of a node just made (mknod applies the umask)
// without following a link that might have replaced it.
func chmodNode(dfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dfd, name, mode&0o7777, unix.AT_SYMLINK_NOFOLLOW)
	if err != unix.EOPNOTSUPP {
		return err
	}
	// No fchmodat2 (Linux < 6.6): through an O_PATH descriptor of the node.
	fd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.ELOOP
	}
	return unix.Chmod(procPath(fd), mode&0o7777)
}

func setTimes(dfd int, name string, st *unix.Stat_t, rel string) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: rel, Err: err}
	}
	return nil
}

// subdir makes the directory name in dfd, copies into it, and then gives
// it the source's owner, mode, xattrs and times (last, so a read-only
// directory is still filled and its mtime is not spoiled by the filling).
func (c *copier) subdir(sfd, dfd int, name, rel string, depth int, st *unix.Stat_t) error {
	if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
		return &os.PathError{Op: "mkdir", Path: rel, Err: err}
	}
	src, err := openDir(sfd, name)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openDir(dfd, name)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := c.dir(src, dst, rel, depth+1); err != nil {
		return err
	}
	if err := c.dirMeta(src, dst, st); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

// dirMeta gives the directory dst the metadata st of the directory src.
func (c *copier) dirMeta(src, dst *os.File, st *unix.Stat_t) error {
	dfd := int(dst.Fd())
	if err := unix.Fchown(dfd, int(st.Uid), int(st.Gid)); err != nil {
		return os.NewSyscallError("fchown", err)
	}
	if err := unix.Fchmod(dfd, st.Mode&0o7777); err != nil {
		return os.NewSyscallError("fchmod", err)
	}
	if err := copyXattrs(xattrFD(src.Fd()), xattrFD(dst.Fd())); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, procPath(dfd), ts, 0); err != nil {
		return os.NewSyscallError("utimensat", err)
	}
	return nil
}

// file copies the regular file name from sfd to dfd.
func (c *copier) file(sfd, dfd int, name, rel string, st *unix.Stat_t) error {
	ifd, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: rel, Err: err}
	}
	in := os.NewFile(uintptr(ifd), rel)
	defer in.Close()
	var now unix.Stat_t
	if err := unix.Fstat(ifd, &now); err != nil {
		return &os.PathError{Op: "fstat", Path: rel, Err: err}
	}
	if now.Mode&unix.S_IFMT != unix.S_IFREG || now.Ino != st.Ino || now.Dev != st.Dev {
		return fmt.Errorf("%s: changed while being copied: %w", rel, errdefs.ErrConflict)
	}
	ofd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: rel, Err: err}
	}
	out := os.NewFile(uintptr(ofd), rel)
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil { // copy_file_range where it can
		return fmt.Errorf("copy %s: %w", rel, err)
	}
	// Owner before mode: chown clears the set-id bits. Xattrs after both:
	// chown drops security.capability.
	if err := unix.Fchown(ofd, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "fchown", Path: rel, Err: err}
	}
	if err := unix.Fchmod(ofd, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "fchmod", Path: rel, Err: err}
	}
	if err := copyXattrs(xattrFD(in.Fd()), xattrFD(out.Fd())); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", rel, err)
	}
	return setTimes(dfd, name, st, rel)
}

// link makes name in dfd another link to first, the copy of the same
// source inode. first is resolved beneath dst without following links,
// so a link planted in dst meanwhile cannot redirect it.
func (c *copier) link(first string, dfd int, name string) error {
	dir, base := path.Split(first)
	pfd := c.root
	if dir != "" {
		how := unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		}
		fd, err := unix.Openat2(c.root, strings.TrimSuffix(dir, "/"), &how)
		if err != nil {
			return &os.PathError{Op: "open", Path: dir, Err: err}
		}
		defer unix.Close(fd)
		pfd = fd
	}
	if err := unix.Linkat(pfd, base, dfd, name, 0); err != nil {
		return &os.PathError{Op: "link", Path: first, Err: err}
	}
	return nil
}

// xattrIO reads and writes the extended attributes of one file.
type xattrIO interface {
	list(buf []byte) (int, error)
	get(name string, buf []byte) (int, error)
	set(name string, val []byte) error
}

// xattrFD is a file open as a descriptor.
type xattrFD uintptr

func (f xattrFD) list(buf []byte) (int, error) { return unix.Flistxattr(int(f), buf) }
func (f xattrFD) get(n string, buf []byte) (int, error) {
	return unix.Fgetxattr(int(f), n, buf)
}
func (f xattrFD) set(n string, v []byte) error { return unix.Fsetxattr(int(f), n, v, 0) }

// xattrPath is a file named by a path whose last component is not
// followed: symbolic links and nodes, which cannot be opened safely.
type xattrPath struct{ p string }

func (f xattrPath) list(buf []byte) (int, error) { return unix.Llistxattr(f.p, buf) }
func (f xattrPath) get(n string, buf []byte) (int, error) {
	return unix.Lgetxattr(f.p, n, buf)
}
func (f xattrPath) set(n string, v []byte) error { return unix.Lsetxattr(f.p, n, v, 0) }

// copyXattrs copies every extended attribute of src to dst. A filesystem
// without xattrs on either side is not an error.
func copyXattrs(src, dst xattrIO) error {
	size, err := src.list(nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		if err != nil {
			return os.NewSyscallError("listxattr", err)
		}
		return nil
	}
	list := make([]byte, size)
	n, err := src.list(list)
	if err != nil {
		return os.NewSyscallError("listxattr", err)
	}
	buf := make([]byte, xattrSizeMax)
	for _, name := range strings.Split(strings.TrimRight(string(list[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vn, err := src.get(name, buf)
		if err == unix.ENODATA {
			continue // removed since listed
		}
		if err != nil {
			return os.NewSyscallError("getxattr "+name, err)
		}
		if err := dst.set(name, buf[:vn]); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return os.NewSyscallError("setxattr "+name, err)
		}
	}
	return nil
}
