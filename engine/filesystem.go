package engine

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	bmount "github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/spec"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"
)

// A container's files, as dockerd's archive endpoints serve them (docker
// cp and export are clients of these):
//
//	StatPath      HEAD /containers/{id}/archive   what a path is
//	ArchivePath   GET  /containers/{id}/archive   a tar of a path
//	ExtractToDir  PUT  /containers/{id}/archive   unpack a tar into a directory
//	Export        GET  /containers/{id}/export    a tar of the whole rootfs
//
// They work on running and stopped containers alike: a running one's root
// filesystem is the one its shim mounted; a stopped one's snapshot is
// mounted for the call, under the container's lock so that it cannot start
// meanwhile. The container's binds and volumes are seen at their mount
// points (see fsView), as in docker; tmpfs mounts live only inside a
// running container and are not.

// ExtractOptions tune ExtractToDir.
type ExtractOptions struct {
	// CopyUIDGID gives every extracted file to the container's user (its
	// --user or the image's USER) when it has one: docker's -a. Otherwise,
	// and without a user, files keep the owners the tar gives them.
	CopyUIDGID bool
}

// containerFileNotFound is docker's error for a path that is not there.
func containerFileNotFound(p, ref string) error {
	return errorf(errdefs.ErrNotFound, "Could not find the file %s in container %s", p, ref)
}

// absPath makes p absolute in the container, keeping a trailing "/" or
// "/." that says it must be a directory (docker's
// archive.PreserveTrailingDotOrSeparator).
func absPath(p string) string {
	clean := path.Join("/", p)
	if path.Base(p) == "." && path.Base(clean) != "." {
		if !strings.HasSuffix(clean, "/") {
			clean += "/"
		}
		clean += "."
	}
	if strings.HasSuffix(p, "/") && !strings.HasSuffix(clean, "/") {
		clean += "/"
	}
	return clean
}

// assertsDir reports whether p ends in "/" or "/.".
func assertsDir(p string) bool {
	return strings.HasSuffix(p, "/") || path.Base(p) == "."
}

// statIn resolves the container path p in v as docker does: links before
// its last component are followed, the last one only when p ends in "/"
// or "/.". It returns the resolved path and what it names.
func statIn(v *fsView, p, ref string) (string, container.PathStat, error) {
	abs := absPath(p)
	resolved, err := v.resolve(abs, assertsDir(abs))
	if err == nil {
		var st unix.Stat_t
		var target string
		st, target, err = v.lstat(resolved)
		if err == nil && assertsDir(abs) && !isDir(&st) {
			return "", container.PathStat{}, errorf(errdefs.ErrInvalidArgument, "lstat %s: not a directory", abs)
		}
		if err == nil {
			ps := container.PathStat{
				Name: path.Base(abs), Size: st.Size, Mode: fileMode(&st),
				Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
			}
			if target != "" {
				// Docker reports where the link leads, fully evaluated.
				ps.LinkTarget = target
				if full, err := v.resolve(abs, true); err == nil {
					ps.LinkTarget = full
				}
			}
			return resolved, ps, nil
		}
	}
	if notFound(err) {
		return "", container.PathStat{}, containerFileNotFound(p, ref)
	}
	return "", container.PathStat{}, fmt.Errorf("stat %s in container %s: %w", p, ref, err)
}

// fileMode converts a stat mode to Go's, as os.Lstat would.
func fileMode(st *unix.Stat_t) fs.FileMode {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// StatPath describes the path p in the container (docker's HEAD archive).
func (e *Engine) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return container.PathStat{}, err
	}
	var ps container.PathStat
	err = e.withContainerView(ctx, c, true, func(v *fsView) error {
		_, ps, err = statIn(v, p, ref)
		return err
	})
	return ps, err
}

// ArchivePath writes a tar of the path p in the container (docker's GET
// archive): a file, or a directory with everything below it. Once p is
// found, open is called with what it is and returns where the tar goes
// and, if not "", the name its top entry takes instead of p's base name
// (docker cp's rebasing). An error from open ends the call.
func (e *Engine) ArchivePath(ctx context.Context, ref, p string, open func(container.PathStat) (io.Writer, string, error)) error {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	err = e.withContainerView(ctx, c, true, func(v *fsView) error {
		resolved, ps, err := statIn(v, p, ref)
		if err != nil {
			return err
		}
		w, name, err := open(ps)
		if err != nil {
			return err
		}
		if name == "" {
			name = ps.Name
		}
		tw := newTreeWriter(w, v, true)
		if err := tw.writePath(ctx, resolved, name); err != nil {
			return err
		}
		return tw.close()
	})
	if err == nil {
		e.containerEvent(ctx, c, "archive-path", nil)
	}
	return err
}

// ExtractToDir unpacks the tar r into the directory p of the container
// (docker's PUT archive). p's links are all followed, inside the
// container; it must exist and be a directory. Nothing in the tar can
// replace a directory with a non-directory or the other way round, nor
// land outside the container's "/" or a volume's top, and a read-only
// rootfs or volume is refused as docker refuses it.
func (e *Engine) ExtractToDir(ctx context.Context, ref, p string, r io.Reader, o ExtractOptions) error {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	user := c.Config.User
	if o.CopyUIDGID && user == "" {
		if rec, err := e.FindImage(ctx, c.Image); err == nil {
			if img, err := e.ResolveImage(ctx, rec); err == nil {
				user = img.ConfigFile.Config.User
			}
		}
	}
	err = e.withContainerView(ctx, c, true, func(v *fsView) error {
		dst, err := v.resolve(absPath(p), true)
		if err != nil {
			if notFound(err) {
				return containerFileNotFound(p, ref)
			}
			return err
		}
		st, _, err := v.lstat(dst)
		if notFound(err) {
			return containerFileNotFound(p, ref)
		}
		if err != nil {
			return err
		}
		if !isDir(&st) {
			return errorf(errdefs.ErrInvalidArgument, "extraction point is not a directory")
		}
		if err := v.writable(dst, c.HostConfig.ReadonlyRootfs); err != nil {
			return err
		}
		opts := extractOptions{readonlyRootfs: c.HostConfig.ReadonlyRootfs}
		if o.CopyUIDGID && user != "" {
			u, _, err := spec.ExecUser(user, viewUsers{v})
			if err != nil {
				return err
			}
			opts.owner = &[2]int{int(u.UID), int(u.GID)}
		}
		return v.extract(ctx, dst, r, opts)
	})
	if err == nil {
		e.containerEvent(ctx, c, "extract-to-dir", nil)
	}
	return err
}

// Export writes a tar of the container's root filesystem (docker export):
// what its processes see at "/" but its volumes and binds, whose mount
// points are there empty, as in docker.
func (e *Engine) Export(ctx context.Context, ref string, w io.Writer) error {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	err = e.withContainerView(ctx, c, false, func(v *fsView) error {
		tw := newTreeWriter(w, v, false)
		if err := tw.writePath(ctx, "/", ""); err != nil {
			return err
		}
		return tw.close()
	})
	if err == nil {
		e.containerEvent(ctx, c, "export", nil)
	}
	return err
}

// viewUsers reads a view's account files for spec's user lookup.
type viewUsers struct{ v *fsView }

func (u viewUsers) open(p string) (io.ReadCloser, error) {
	resolved, err := u.v.resolve(p, true)
	if err != nil {
		return nil, err
	}
	fd, err := u.v.open(resolved, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

func (u viewUsers) Passwd() (io.ReadCloser, error) { return u.open("/etc/passwd") }
func (u viewUsers) Group() (io.ReadCloser, error)  { return u.open("/etc/group") }

// withContainerView runs fn on a view of the container's files, holding
// the container's lock: the rootfs its shim mounted when it runs, else its
// snapshot mounted for the call; with withMounts, its binds, volumes and
// /etc files at their mount points.
func (e *Engine) withContainerView(ctx context.Context, c *Container, withMounts bool, fn func(*fsView) error) error {
	l, err := e.lock(ctx, c.ID)
	if err != nil {
		return err
	}
	defer l.Unlock()
	if _, err := e.loadContainer(c.ID); err != nil {
		return err // removed while we waited
	}
	var mounts []viewMount
	if withMounts {
		ms, release, err := e.viewMounts(ctx, c)
		if err != nil {
			return err
		}
		defer release()
		mounts = ms
	}
	run := func(root string) error {
		v, err := newView(root, mounts)
		if err != nil {
			return err
		}
		defer v.close()
		return fn(v)
	}
	st, err := e.state(c)
	if err != nil {
		return err
	}
	switch st.Status {
	case "running", "paused", "restarting":
		rootfs := filepath.Join(e.bundleDir(c.ID), "rootfs")
		if e.rootfsMounted(ctx, c, rootfs) {
			return run(rootfs)
		}
	}
	mnts, err := e.snapshots.Mounts(ctx, c.Snapshot)
	if err != nil {
		return fmt.Errorf("rootfs of container %s: %w", c.Name, err)
	}
	return bmount.WithTempMount(ctx, mnts, run)
}

// rootfsMounted reports whether the container's snapshot is mounted on
// rootfs (its shim's mount): an overlay is another device than its
// parent directory; the vfs driver's bind mount is the snapshot's own
// directory.
func (e *Engine) rootfsMounted(ctx context.Context, c *Container, rootfs string) bool {
	var st, pst, ust unix.Stat_t
	if unix.Stat(rootfs, &st) != nil || unix.Stat(filepath.Dir(rootfs), &pst) != nil {
		return false
	}
	if st.Dev != pst.Dev {
		return true
	}
	upper, err := e.snapshots.UpperDir(ctx, c.Snapshot)
	return err == nil && unix.Stat(upper, &ust) == nil && ust.Dev == st.Dev && ust.Ino == st.Ino
}

// viewMounts lists what is mounted over the container's rootfs, as a
// view needs it: binds and volumes (each volume held mounted until
// release), and the /etc files Docker bind-mounts. tmpfs mounts are left
// out: they exist only inside a running container.
func (e *Engine) viewMounts(ctx context.Context, c *Container) ([]viewMount, func(), error) {
	var out []viewMount
	var held []string
	ref := "cp-" + c.ID + "-" + randomHex(4)
	release := func() {
		if len(held) == 0 {
			return
		}
		if vols, err := e.volumes(); err == nil {
			for _, name := range held {
				vols.Unmount(context.WithoutCancel(ctx), name, ref)
			}
		}
	}
	taken := map[string]bool{}
	for _, mp := range c.Mounts {
		dest := path.Clean(mp.Destination)
		taken[dest] = true
		switch mp.Type {
		case mount.TypeBind:
			st, err := os.Stat(mp.Source)
			file := err == nil && !st.IsDir()
			out = append(out, viewMount{dest: dest, source: mp.Source, rw: mp.RW, user: true, file: file})
		case mount.TypeVolume:
			vols, err := e.volumes()
			if err != nil {
				release()
				return nil, nil, err
			}
			src, err := vols.Mount(ctx, mp.Name, ref)
			if err != nil {
				release()
				return nil, nil, err
			}
			held = append(held, mp.Name)
			out = append(out, viewMount{dest: dest, source: src, rw: mp.RW, user: true})
		}
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		src := filepath.Join(e.containerDir(c.ID), f)
		if _, err := os.Lstat(src); err != nil || taken["/etc/"+f] {
			continue
		}
		out = append(out, viewMount{dest: "/etc/" + f, source: src, rw: !c.HostConfig.ReadonlyRootfs, file: true})
	}
	return out, release, nil
}
