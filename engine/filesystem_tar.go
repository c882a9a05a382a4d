package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// treeWriter writes what a view holds to a tar stream the way docker's
// archive package does: PAX headers, numeric owners without names, mtimes
// in whole seconds, no atime or ctime, security.capability kept, files
// with several links as one file and hardlinks to it, sockets skipped.
// Every entry is opened with *at calls from its parent's descriptor and
// never followed, so a link in the tree is archived as a link.
type treeWriter struct {
	tw     *tar.Writer
	view   *fsView
	mounts bool // descend into the view's mounts (cp) rather than the rootfs beneath (export)
	// shallow archives a directory without its contents (a layer's
	// changes list each entry).
	shallow bool
	links   map[[2]uint64]string
	buf     []byte
}

func newTreeWriter(w io.Writer, v *fsView, mounts bool) *treeWriter {
	return &treeWriter{tw: tar.NewWriter(w), view: v, mounts: mounts, links: map[[2]uint64]string{}, buf: make([]byte, 128<<10)}
}

// close writes the end of the archive.
func (w *treeWriter) close() error { return w.tw.Close() }

// writePath archives the clean absolute path p of the view (and, for a
// directory, everything below it) under the tar name name; a directory
// named "" has no entry of its own and its children are named as they
// are (export's "bin/", not "./bin/").
func (w *treeWriter) writePath(ctx context.Context, p, name string) error {
	pfd, base, err := w.view.parentOf(p)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return w.entry(ctx, pfd, base, p, name)
}

// childName is the tar name of the child n of the entry named name.
func childName(name, n string) string {
	if name == "" {
		return n
	}
	return strings.TrimSuffix(name, "/") + "/" + n
}

// entry archives base, in the directory dirfd, which is p in the view.
func (w *treeWriter) entry(ctx context.Context, dirfd int, base, p, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	flags := unix.AT_SYMLINK_NOFOLLOW
	if base == "" {
		flags |= unix.AT_EMPTY_PATH // dirfd itself: the view's "/"
	}
	if err := unix.Fstatat(dirfd, base, &st, flags); err != nil {
		return &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	hdr := statHeader(&st, name)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		return nil
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dirfd, base, buf)
		if err != nil {
			return &os.PathError{Op: "readlink", Path: p, Err: err}
		}
		hdr.Linkname = string(buf[:n])
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := w.links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				return w.tw.WriteHeader(hdr)
			}
			w.links[key] = hdr.Name
		}
		return w.file(dirfd, base, p, hdr, &st)
	case unix.S_IFDIR:
		return w.dir(ctx, dirfd, base, p, hdr)
	}
	return w.tw.WriteHeader(hdr)
}

// statHeader is the tar header of a file with stat st.
func statHeader(st *unix.Stat_t, name string) *tar.Header {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if name != "" && !strings.HasSuffix(name, "/") {
			hdr.Name += "/"
		}
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	}
	return hdr
}

// file archives a regular file: opened without following and without
// blocking, and checked to be the file that was stat'ed.
func (w *treeWriter) file(dirfd int, base, p string, hdr *tar.Header, st *unix.Stat_t) error {
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Ino != st.Ino || now.Dev != st.Dev {
		return &os.PathError{Op: "open", Path: p, Err: unix.ESTALE}
	}
	capBuf := make([]byte, 256)
	if n, err := unix.Fgetxattr(fd, "security.capability", capBuf); err == nil && n > 0 {
		hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(capBuf[:n])}
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	// Exactly the size in the header: a file that grows while it is read
	// is cut, one that shrinks is padded with zeros.
	n, err := io.CopyBuffer(w.tw, io.LimitReader(f, hdr.Size), w.buf)
	if err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	if n < hdr.Size {
		if _, err := io.CopyN(w.tw, zeros{}, hdr.Size-n); err != nil {
			return fmt.Errorf("archive %s: %w", p, err)
		}
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// dir archives a directory and then its entries in name order; a mount
// point of the view is archived from the mount's source when w.mounts.
func (w *treeWriter) dir(ctx context.Context, dirfd int, base, p string, hdr *tar.Header) error {
	if hdr.Name != "" {
		if err := w.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archive %s: %w", p, err)
		}
	}
	if w.shallow {
		return nil
	}
	if base == "" {
		base = "."
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	d := os.NewFile(uintptr(fd), p)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", p, err)
	}
	sort.Strings(names)
	for _, n := range names {
		cp, cname := path.Join(p, n), childName(hdr.Name, n)
		if w.mounts && w.view.mountAt(cp) != nil {
			err = w.writePath(ctx, cp, cname)
		} else {
			err = w.entry(ctx, fd, n, cp, cname)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// extractOptions tune extract.
type extractOptions struct {
	// owner, when set, owns every entry instead of the tar's uid/gid.
	owner *[2]int
	// readonlyRootfs refuses entries outside the user's mounts.
	readonlyRootfs bool
}

// applyRoute feeds one archive.Apply: the entries of a stream that fall
// in one mount (or in the rootfs).
type applyRoute struct {
	pw   *io.PipeWriter
	tw   *tar.Writer
	done chan error
}

// extract unpacks the tar stream r into the directory dst (a clean
// absolute path of the view that resolve found, with its links followed)
// as docker cp does: an existing directory is never replaced by a
// non-directory nor the other way round, and what is there otherwise is
// replaced. Each entry goes to the filesystem it falls in: the rootfs or
// the mount at or above its path, where archive.Apply puts it, relative to
// that filesystem's top, so that links resolve inside the container's "/"
// (or inside the volume) and never outside it. An entry named like an
// overlay whiteout is refused: Apply would delete instead of write.
func (v *fsView) extract(ctx context.Context, dst string, r io.Reader, o extractOptions) (err error) {
	routes := map[*viewMount]*applyRoute{}
	defer func() {
		for _, rt := range routes {
			if err == nil {
				err = rt.tw.Close()
			}
			if err != nil {
				rt.pw.CloseWithError(err)
			} else {
				rt.pw.Close()
			}
			if aerr := <-rt.done; aerr != nil && (err == nil || errors.Is(err, io.ErrClosedPipe)) {
				err = aerr
			}
		}
	}()
	route := func(m *viewMount) *applyRoute {
		if rt := routes[m]; rt != nil {
			return rt
		}
		pr, pw := io.Pipe()
		rt := &applyRoute{pw: pw, tw: tar.NewWriter(pw), done: make(chan error, 1)}
		go func() {
			_, err := archive.Apply(ctx, v.hostPath(m), pr, archive.ApplyOptions{Whiteouts: archive.NaiveWhiteouts})
			if err != nil {
				err = applyError(err)
				pr.CloseWithError(err)
			} else {
				pr.CloseWithError(io.ErrClosedPipe)
			}
			rt.done <- err
		}()
		routes[m] = rt
		return rt
	}
	seen := map[string]bool{} // path → is a directory, for entries of this stream
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w: %w", errdefs.ErrInvalidArgument, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		p, err := v.entryPath(dst, hdr.Name)
		if err != nil {
			return err
		}
		if strings.HasPrefix(path.Base(p), ".wh.") {
			return errorf(errdefs.ErrNotImplemented, "%s: berth does not copy files whose names start with .wh. (overlay whiteouts)", v.show(p))
		}
		isDirEntry := hdr.Typeflag == tar.TypeDir
		if err := v.checkOverwrite(p, dst, isDirEntry, seen); err != nil {
			return err
		}
		seen[p] = isDirEntry
		m, rel := v.locate(p)
		if err := v.writable(p, o.readonlyRootfs); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeLink {
			lp, err := v.entryPath(dst, hdr.Linkname)
			if err != nil {
				return err
			}
			lm, lrel := v.locate(lp)
			if lm != m {
				return &os.LinkError{Op: "link", Old: v.show(lp), New: v.show(p), Err: unix.EXDEV}
			}
			hdr.Linkname = lrel
		}
		hdr.Name = rel
		if o.owner != nil {
			hdr.Uid, hdr.Gid = o.owner[0], o.owner[1]
		}
		hdr.Uname, hdr.Gname = "", ""
		if m != nil && m.file {
			// A file mounted on its own (/etc/hosts, a file bind): its
			// content is replaced, as writing through the mount would.
			if err := writeMountedFile(m.source, hdr, tr); err != nil {
				return fmt.Errorf("extract %s: %w", v.show(p), err)
			}
			continue
		}
		rt := route(m)
		if err := rt.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("extract %s: %w", v.show(p), err)
		}
		if _, err := io.Copy(rt.tw, tr); err != nil {
			return fmt.Errorf("extract %s: %w", v.show(p), err)
		}
	}
}

// entryPath is the path in the view of the tar entry name extracted in
// dst.
func (v *fsView) entryPath(dst, name string) (string, error) {
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errorf(errdefs.ErrInvalidArgument, "invalid archive entry %q: path climbs out of the destination", name)
	}
	return path.Join(dst, rel), nil
}

// checkOverwrite refuses an entry that would replace a directory with a
// non-directory or the other way round (docker's NoOverwriteDirNonDir).
func (v *fsView) checkOverwrite(p, dst string, dirEntry bool, seen map[string]bool) error {
	existsDir, ok := seen[p]
	if !ok {
		parent, err := v.resolve(path.Dir(p), true)
		if err != nil {
			return nil // a parent to be made: nothing there to replace
		}
		st, _, err := v.lstat(path.Join(parent, path.Base(p)))
		if err != nil {
			return nil
		}
		existsDir = isDir(&st)
	}
	switch {
	case existsDir && !dirEntry:
		return errorf(errdefs.ErrInvalidArgument, "cannot overwrite directory %q with non-directory %q", v.show(p), v.show(dst))
	case !existsDir && dirEntry:
		return errorf(errdefs.ErrInvalidArgument, "cannot overwrite non-directory %q with directory %q", v.show(p), v.show(dst))
	}
	return nil
}

// applyError drops archive.Apply's "apply layer:" wording, which speaks of
// layers where cp copies files.
func applyError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "apply layer: ")
	if msg == err.Error() {
		return err
	}
	return &classified{msg: msg, class: err}
}

// writeMountedFile replaces the content of a file mounted on its own by
// a regular file entry's.
func writeMountedFile(dst string, hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
		return errorf(errdefs.ErrInvalidArgument, "a file is mounted there: only a regular file can replace it")
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, io.LimitReader(r, hdr.Size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
