package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// applier holds the state of one Apply: the root's descriptor, the paths
// this layer created (an opaque directory keeps those) and the directory
// times to set at the end.
type applier struct {
	opts     ApplyOptions
	rootPath string
	root     int  // O_PATH descriptor of dst
	fallback bool // the kernel has no openat2: resolve with securejoin
	created  map[string]bool
	dirs     []dirTimes
	buf      []byte
	st       Stats
}

func newApplier(dst string, opts ApplyOptions) (*applier, error) {
	if opts.Whiteouts > OverlayWhiteouts {
		return nil, fmt.Errorf("apply layer: whiteout mode %d: %w", opts.Whiteouts, errdefs.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		return nil, fmt.Errorf("apply layer: %w", err)
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("apply layer: %w", &os.PathError{Op: "open", Path: abs, Err: err})
	}
	a := &applier{opts: opts, rootPath: abs, root: fd, created: map[string]bool{}, buf: make([]byte, 128<<10)}
	probe, err := unix.Openat2(fd, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	switch {
	case err == nil:
		unix.Close(probe)
	case errors.Is(err, unix.ENOSYS):
		a.fallback = true
	default:
		unix.Close(fd)
		return nil, fmt.Errorf("apply layer: %w", &os.PathError{Op: "openat2", Path: abs, Err: err})
	}
	return a, nil
}

func (a *applier) close() { unix.Close(a.root) }

// resolve opens the directory rel as if dst were "/": no symlink, ".." or
// magic link can lead out of dst.
func (a *applier) resolve(rel string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	if a.fallback {
		p, err := securejoin.SecureJoin(a.rootPath, rel)
		if err != nil {
			return -1, err
		}
		fd, err := unix.Open(p, flags|unix.O_NOFOLLOW, 0)
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: rel, Err: err}
		}
		return fd, nil
	}
	for {
		fd, err := unix.Openat2(a.root, rel, &unix.OpenHow{
			Flags:   flags,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // a rename raced the lookup; the kernel asks to retry
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: rel, Err: err}
		}
		return fd, nil
	}
}

// openDir opens the directory rel inside dst; with create it makes missing
// directories (mode 0755, owned by the caller) one component at a time,
// each resolved inside dst.
func (a *applier) openDir(rel string, create bool) (int, error) {
	fd, err := a.resolve(rel)
	if err == nil || !create || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	parent, err := a.resolve(".")
	if err != nil {
		return -1, err
	}
	comps := strings.Split(rel, "/")
	for i := range comps {
		prefix := strings.Join(comps[:i+1], "/")
		fd, err := a.resolve(prefix)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(parent, comps[i], 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(parent)
				return -1, &os.PathError{Op: "mkdirat", Path: prefix, Err: err}
			}
			fd, err = unix.Openat(parent, comps[i], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				err = &os.PathError{Op: "openat", Path: prefix, Err: err}
			}
		}
		unix.Close(parent)
		if err != nil {
			return -1, err
		}
		parent = fd
	}
	return parent, nil
}

// setMetadata gives a new entry its owner, mode, xattrs and times. The
// order matters: chown clears setuid bits and file capabilities, so it
// comes before chmod and the xattrs.
func (a *applier) setMetadata(pfd int, base, rel string, hdr *tar.Header) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lchown", Path: rel, Err: err}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// The entry was created by this call and is not a symlink, so
		// following (the only mode fchmodat has) cannot leave it.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return &os.PathError{Op: "chmod", Path: rel, Err: err}
		}
	}
	if err := setXattrs(pfd, base, rel, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, dirTimes{rel: rel, atime: hdr.AccessTime, mtime: hdr.ModTime})
		return nil
	}
	if err := unix.UtimesNanoAt(pfd, base, timespecs(hdr.AccessTime, hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: rel, Err: err}
	}
	return nil
}

const paxXattr = "SCHILY.xattr."

// forbiddenXattr reports whether a layer may not set the xattr name.
func forbiddenXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// setXattrs sets the entry's PAX SCHILY.xattr records through an O_PATH
// descriptor of the entry itself (via /proc/self/fd), so a symlink is never
// followed. A filesystem or namespace that refuses an xattr (ENOTSUP,
// EPERM) does not fail the layer, as in containerd.
func setXattrs(pfd int, base, rel string, hdr *tar.Header) error {
	var fd = -1
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || forbiddenXattr(name) || name == "" {
			continue
		}
		if fd < 0 {
			var err error
			fd, err = unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "openat", Path: rel, Err: err}
			}
		}
		err := unix.Setxattr("/proc/self/fd/"+strconv.Itoa(fd), name, []byte(v), 0)
		if err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return &os.PathError{Op: "setxattr " + name, Path: rel, Err: err}
		}
	}
	return nil
}

// removeAllAt removes name from the directory dirfd and, if it is a
// directory, everything below it, without following any symlink. A missing
// name is not an error.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "openat", Path: name, Err: err}
	}
	names, err := readDirNames(fd)
	for _, n := range names {
		if err == nil {
			err = removeAllAt(fd, n)
		}
	}
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}

// readDirNames lists the directory fd without consuming fd.
func readDirNames(fd int) ([]string, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: ".", Err: err}
	}
	f := os.NewFile(uintptr(dfd), ".")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory: %w", err)
	}
	return names, nil
}
