package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

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
	cache    cachedDir // the directory the last entry went into
	uid, gid int       // owner of what this process creates (outside setgid directories)
	umask    int       // the process's umask, -1 if unknown
}

// dirRef is an open directory entries are created in, with what decides
// the group and mode a new entry gets there.
type dirRef struct {
	fd   int
	sgid bool   // set-group-ID: new entries take gid, directories the bit too
	gid  uint32 // the directory's group
}

// cachedDir keeps the parent directory of the last entry open: a tar lists
// a directory's entries together, so most entries resolve no path. It
// stays valid because nothing but whiteouts (which drop it) removes a
// directory that is not the entry's own name.
type cachedDir struct {
	rel string
	dirRef
}

// parent returns the directory rel, creating it if missing, from the cache
// when the previous entry was in it too. The caller must not close it.
func (a *applier) parent(rel string) (dirRef, error) {
	if a.cache.fd >= 0 && a.cache.rel == rel {
		return a.cache.dirRef, nil
	}
	a.dropCache()
	fd, err := a.openDir(rel, true)
	if err != nil {
		return dirRef{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return dirRef{}, &os.PathError{Op: "fstat", Path: rel, Err: err}
	}
	a.cache = cachedDir{rel: rel, dirRef: dirRef{fd: fd, sgid: st.Mode&unix.S_ISGID != 0, gid: st.Gid}}
	return a.cache.dirRef, nil
}

func (a *applier) dropCache() {
	if a.cache.fd >= 0 {
		unix.Close(a.cache.fd)
	}
	a.cache = cachedDir{dirRef: dirRef{fd: -1}}
}

// ownedAsIs reports whether an entry created in pd already has hdr's owner.
func (a *applier) ownedAsIs(pd dirRef, hdr *tar.Header) bool {
	gid := a.gid
	if pd.sgid {
		gid = int(pd.gid)
	}
	return hdr.Uid == a.uid && hdr.Gid == gid
}

// createMode is the mode to create hdr's entry with in pd: its own when
// that needs no chown or chmod after (the umask keeps it, no special bits,
// right owner), else safe.
func (a *applier) createMode(pd dirRef, hdr *tar.Header, safe uint32) uint32 {
	perm := uint32(hdr.Mode & 0o7777)
	if a.umask < 0 || perm&0o7000 != 0 || perm&uint32(a.umask) != 0 || pd.sgid || !a.ownedAsIs(pd, hdr) {
		return safe
	}
	return perm
}

var (
	umaskOnce sync.Once
	umaskVal  = -1
)

// processUmask reads the umask from /proc (umask(2) cannot read it
// without setting it, which would race other goroutines' creates).
func processUmask() int {
	umaskOnce.Do(func() {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					umaskVal = int(n)
				}
				return
			}
		}
	})
	return umaskVal
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
	a := &applier{opts: opts, rootPath: abs, root: fd, created: map[string]bool{}, buf: make([]byte, 128<<10),
		cache: cachedDir{dirRef: dirRef{fd: -1}}, uid: os.Geteuid(), gid: os.Getegid(), umask: processUmask()}
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

func (a *applier) close() {
	a.dropCache()
	unix.Close(a.root)
}

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
// comes before chmod and the xattrs. An entry this layer just created
// (fresh) in pd skips the chown when it has the right owner already, and
// the chmod when it was created with its mode (see createMode).
func (a *applier) setMetadata(pd dirRef, base, rel string, hdr *tar.Header, fresh bool) error {
	pfd := pd.fd
	if !fresh || !a.ownedAsIs(pd, hdr) {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lchown", Path: rel, Err: err}
		}
	}
	perm := uint32(hdr.Mode & 0o7777)
	if hdr.Typeflag != tar.TypeSymlink && (!fresh || a.createMode(pd, hdr, 1<<31) != perm) {
		// The entry was created by this call and is not a symlink, so
		// following (the only mode fchmodat has) cannot leave it.
		if err := unix.Fchmodat(pfd, base, perm, 0); err != nil {
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
