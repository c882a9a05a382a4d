package engine

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// fsView is a filesystem as a container's processes see it, made of host
// directories: the root filesystem with the container's binds, volumes
// and the /etc files Docker bind-mounts laid over it. cp works on a view
// instead of entering the container's mount namespace: for a running
// container the rootfs is mounted in the host's namespace too, but its
// volumes are mounted only inside, so a path under a mount point is
// turned into a path under the mount's source here.
//
// Paths are resolved the way the kernel would resolve them inside the
// container, in user space: symbolic links are followed, and an absolute
// target or ".." starts again from, or stops at, the container's "/"
// (which may lead from a volume back into the rootfs or into another
// volume). Nothing is opened by a host path below the view's own
// directories: every component is opened with openat(O_NOFOLLOW) from its
// parent's descriptor, so a link the container swaps in while berth works
// makes the operation fail, and never leads outside.
//
// A view of the local filesystem (root "/", no mounts) serves the host
// side of cp with the same code.
type fsView struct {
	root   string      // host directory of the container's "/"
	rootFD int         // O_PATH descriptor of root, held so that an unmount cannot swap it
	mounts []viewMount // longest destination first
	prefix string      // shown before paths in errors (a local view's root)
}

// show is p as errors name it.
func (v *fsView) show(p string) string {
	if v.prefix == "" {
		return p
	}
	return filepath.Join(v.prefix, p)
}

// viewMount is one directory or file of the host mounted into the view.
type viewMount struct {
	dest   string // clean absolute path in the container
	source string // host path of what is mounted there
	rw     bool
	user   bool // a bind or volume the user asked for (not an /etc file)
	file   bool // a file, not a directory, is mounted there
}

// maxSymlinks bounds the links one resolution follows, as the kernel does.
const maxSymlinks = 40

// newView opens a view of root with mounts over it; close releases it.
func newView(root string, mounts []viewMount) (*fsView, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].dest) > len(mounts[j].dest) })
	return &fsView{root: root, rootFD: fd, mounts: mounts}, nil
}

func (v *fsView) close() { unix.Close(v.rootFD) }

// mountAt returns the mount whose destination is exactly p.
func (v *fsView) mountAt(p string) *viewMount {
	for i := range v.mounts {
		if v.mounts[i].dest == p {
			return &v.mounts[i]
		}
	}
	return nil
}

// locate returns the mount that holds the clean absolute path p (nil for
// the rootfs) and p relative to that mount's source ("." for its top).
func (v *fsView) locate(p string) (*viewMount, string) {
	for i := range v.mounts {
		m := &v.mounts[i]
		if p == m.dest {
			return m, "."
		}
		if rest, ok := strings.CutPrefix(p, m.dest+"/"); ok && m.dest != "/" {
			return m, rest
		}
	}
	rel := strings.TrimPrefix(p, "/")
	if rel == "" {
		rel = "."
	}
	return nil, rel
}

// hostPath is the host path of a mount's top (nil: the rootfs, by its
// held descriptor).
func (v *fsView) hostPath(m *viewMount) string {
	if m == nil {
		return "/proc/self/fd/" + strconv.Itoa(v.rootFD)
	}
	return m.source
}

// openTop opens the top of a mount (nil: the rootfs) with flags.
func (v *fsView) openTop(m *viewMount, flags int) (int, error) {
	if m == nil {
		return unix.Openat(v.rootFD, ".", flags|unix.O_CLOEXEC, 0)
	}
	return unix.Open(m.source, flags|unix.O_CLOEXEC, 0)
}

// open opens the clean absolute path p, which resolve has made free of
// links but for its last component, with flags (O_NOFOLLOW is added: a
// final symlink is opened as itself only with O_PATH). The host path of
// the mount holding p is trusted; below it every component is opened
// from its parent with O_NOFOLLOW.
func (v *fsView) open(p string, flags int) (int, error) {
	m, rel := v.locate(p)
	if rel == "." {
		fd, err := v.openTop(m, flags)
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
	dir, err := v.openTop(m, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p, Err: err}
	}
	comps := strings.Split(rel, "/")
	for i, c := range comps {
		f := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(comps)-1 {
			f = flags | unix.O_NOFOLLOW | unix.O_CLOEXEC
		} else {
			f |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(dir, c, f, 0)
		unix.Close(dir)
		if err != nil {
			if i < len(comps)-1 && errors.Is(err, unix.ENOTDIR) {
				// A link where resolve saw a directory: the container
				// changed the path under us.
				err = unix.ELOOP
			}
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		dir = fd
	}
	return dir, nil
}

// lstat describes p without following a final link, and reads the link.
func (v *fsView) lstat(p string) (unix.Stat_t, string, error) {
	var st unix.Stat_t
	fd, err := v.open(p, unix.O_PATH)
	if err != nil {
		return st, "", err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, "", &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return st, "", nil
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return st, "", &os.PathError{Op: "readlink", Path: p, Err: err}
	}
	return st, string(buf[:n]), nil
}

// resolve turns p (absolute or relative to "/") into the clean absolute
// path it names in the view, following every symbolic link on the way
// and, with followFinal, the one it ends in. A missing last component is
// not an error (the caller may be about to create it); a missing or
// non-directory one before it is.
func (v *fsView) resolve(p string, followFinal bool) (string, error) {
	todo := strings.Split(p, "/")
	cur, links := "/", 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		last := !moreComponents(todo)
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		if (last && !followFinal) || v.mountAt(next) != nil {
			cur = next
			continue
		}
		st, target, err := v.lstat(next)
		if err != nil {
			if last && errors.Is(err, unix.ENOENT) {
				cur = next
				continue
			}
			return "", err
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			if links++; links > maxSymlinks {
				return "", &os.PathError{Op: "resolve", Path: p, Err: unix.ELOOP}
			}
			if strings.HasPrefix(target, "/") {
				cur = "/"
			}
			todo = append(strings.Split(target, "/"), todo...)
		case !last && st.Mode&unix.S_IFMT != unix.S_IFDIR:
			return "", &os.PathError{Op: "resolve", Path: next, Err: unix.ENOTDIR}
		default:
			cur = next
		}
	}
	return cur, nil
}

// moreComponents reports whether any of the remaining components names
// something (empty and "." ones do not).
func moreComponents(comps []string) bool {
	for _, c := range comps {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}

// writable checks that the clean absolute path p may be written through
// the view: Docker refuses a read-only rootfs outside volumes and a
// read-only volume.
func (v *fsView) writable(p string, readonlyRootfs bool) error {
	m, _ := v.locate(p)
	switch {
	case m != nil && m.user && !m.rw:
		return errorf(errdefs.ErrInvalidArgument, "mounted volume is marked read-only")
	case m != nil && m.user:
		return nil
	case readonlyRootfs:
		return errorf(errdefs.ErrInvalidArgument, "container rootfs is marked read-only")
	}
	return nil
}

// isDir reports whether st is a directory.
func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// notFound reports errors that mean "no such file".
func notFound(err error) bool {
	return errors.Is(err, unix.ENOENT)
}

// parentOf opens the directory that holds the clean absolute path p and
// returns it with p's name in it. The top of a mount is opened from its
// host parent, a host path the engine or the user chose; for "/" it
// returns the root itself, named "".
func (v *fsView) parentOf(p string) (int, string, error) {
	if p == "/" {
		fd, err := unix.Openat(v.rootFD, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, "", &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, "", nil
	}
	if m := v.mountAt(p); m != nil {
		host := m.source
		fd, err := unix.Open(filepath.Dir(host), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, "", &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, filepath.Base(host), nil
	}
	fd, err := v.open(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, "", err
	}
	return fd, path.Base(p), nil
}
