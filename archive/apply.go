package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// Whiteouts selects how Apply turns OCI whiteout entries into changes.
type Whiteouts uint8

const (
	// NaiveWhiteouts applies a whiteout by deleting: dst holds the merged
	// tree of every lower layer (the copying "vfs" snapshotter).
	NaiveWhiteouts Whiteouts = iota
	// OverlayWhiteouts writes overlayfs whiteouts: dst is the empty upper
	// directory of an overlay whose lower layers hold the older changes.
	OverlayWhiteouts
)

// Prefixes of OCI whiteout entries (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	// Whiteouts says what kind of directory dst is; the zero value is
	// NaiveWhiteouts.
	Whiteouts Whiteouts
}

// Stats describes one applied layer.
type Stats struct {
	Size           int64 // bytes of uncompressed tar read, trailing padding included
	Entries        int   // tar entries applied, whiteouts included
	SkippedDevices int   // character and block device entries not created
}

// Apply extracts the uncompressed layer tar r into dst and returns the
// number of tar bytes read. See the package doc for what it refuses.
func Apply(ctx context.Context, dst string, r io.Reader, opts ApplyOptions) (int64, error) {
	st, err := ApplyStats(ctx, dst, r, opts)
	return st.Size, err
}

// ApplyStats is Apply returning everything it counted.
func ApplyStats(ctx context.Context, dst string, r io.Reader, opts ApplyOptions) (Stats, error) {
	cr := &countingReader{r: r}
	a, err := newApplier(dst, opts)
	if err != nil {
		return Stats{}, err
	}
	defer a.close()
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return a.stats(cr), err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.stats(cr), fmt.Errorf("apply layer: read tar: %w: %w", errdefs.ErrInvalidArgument, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.stats(cr), fmt.Errorf("apply layer: %q: %w", hdr.Name, err)
		}
	}
	if err := a.finish(); err != nil {
		return a.stats(cr), fmt.Errorf("apply layer: %w", err)
	}
	// Read what follows the end-of-archive marker, so a caller that hashes
	// the stream sees all of it.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return a.stats(cr), fmt.Errorf("apply layer: drain: %w", err)
	}
	return a.stats(cr), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// cleanName turns a tar entry name into a clean slash-separated path
// relative to dst, "." for dst itself.
func cleanName(name string) (string, error) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("path climbs out of the layer root: %w", errdefs.ErrInvalidArgument)
	}
	return p, nil
}

func splitPath(rel string) (dir, base string) {
	dir, base = path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	return dir, base
}

type dirTimes struct {
	rel          string
	atime, mtime time.Time
}

func (a *applier) stats(cr *countingReader) Stats {
	s := a.st
	s.Size = cr.n
	return s
}

// entry applies one tar entry.
func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock:
		a.st.SkippedDevices++
		return nil
	}
	if isSparse(hdr) {
		// A sparse entry's holes cost nothing in the tar but come out as
		// written zeros: a few bytes could fill the disk. Image tools do
		// not write sparse layers, so refuse them.
		return fmt.Errorf("sparse file: %w", errdefs.ErrNotImplemented)
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("non-directory entry for the layer root: %w", errdefs.ErrInvalidArgument)
		}
		return nil // the root belongs to the snapshot, not the layer
	}
	a.st.Entries++
	dir, base := splitPath(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, base)
	}
	pd, err := a.parent(dir)
	if err != nil {
		return err
	}
	pfd := pd.fd
	// Create first and look at what is there only if the name is taken:
	// in a fresh upper dir it never is.
	fresh := true
	for attempt := 0; ; attempt++ {
		var err error
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			err = a.writeFile(pd, base, hdr, r)
		case tar.TypeDir:
			err = unix.Mkdirat(pfd, base, a.createMode(pd, hdr, 0o700))
			if errors.Is(err, unix.EEXIST) {
				var st unix.Stat_t
				if serr := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
					err, fresh = nil, false // an existing directory is kept
				}
			}
		case tar.TypeSymlink:
			err = unix.Symlinkat(hdr.Linkname, pfd, base)
		case tar.TypeLink:
			err = a.hardlink(pfd, rel, hdr.Linkname)
		case tar.TypeFifo:
			err = unix.Mknodat(pfd, base, unix.S_IFIFO|uint32(hdr.Mode&0o7777), 0)
			fresh = false // mknod applies the umask: chmod
		default:
			return fmt.Errorf("unsupported tar entry type %q: %w", hdr.Typeflag, errdefs.ErrNotImplemented)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || attempt > 0 {
			if errno, ok := err.(unix.Errno); ok {
				return &os.PathError{Op: createOp(hdr.Typeflag), Path: rel, Err: errno}
			}
			return err
		}
		if err := removeAllAt(pfd, base); err != nil {
			return fmt.Errorf("replace existing entry: %w", err)
		}
	}
	if hdr.Typeflag == tar.TypeLink {
		return nil
	}
	a.created[rel] = true
	return a.setMetadata(pd, base, rel, hdr, fresh)
}

func createOp(t byte) string {
	switch t {
	case tar.TypeReg, tar.TypeRegA:
		return "openat"
	case tar.TypeDir:
		return "mkdirat"
	case tar.TypeSymlink:
		return "symlinkat"
	case tar.TypeFifo:
		return "mknodat"
	}
	return "create"
}

// isSparse reports whether hdr is a GNU or PAX sparse file.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// hardlink links rel to target, which must already exist inside dst.
func (a *applier) hardlink(pfd int, rel, linkname string) error {
	target, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", linkname, err)
	}
	if target == "." {
		return fmt.Errorf("hardlink to the layer root: %w", errdefs.ErrInvalidArgument)
	}
	tdir, tbase := splitPath(target)
	tfd, err := a.openDir(tdir, false)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", linkname, err)
	}
	defer unix.Close(tfd)
	_, base := splitPath(rel)
	// Flags 0: a target that is a symlink is linked itself, not followed.
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return &os.LinkError{Op: "linkat", Old: linkname, New: rel, Err: err}
	}
	a.created[rel] = true
	return nil
}

// writeFile creates base in pd and copies the entry's bytes into it from
// the applier's buffer, with plain reads and writes.
func (a *applier) writeFile(pd dirRef, base string, hdr *tar.Header, r io.Reader) error {
	fd, err := unix.Openat(pd.fd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, a.createMode(pd, hdr, 0o600))
	if err != nil {
		return err // EEXIST is handled by the caller
	}
	err = a.copyTo(fd, hdr.Size, r)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: base, Err: cerr}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", base, err)
	}
	return nil
}

func (a *applier) copyTo(fd int, size int64, r io.Reader) error {
	for size > 0 {
		n := int64(len(a.buf))
		if size < n {
			n = size
		}
		got, err := io.ReadFull(r, a.buf[:n])
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		p := a.buf[:got]
		for len(p) > 0 {
			w, err := unix.Write(fd, p)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			p = p[w:]
		}
		size -= int64(got)
	}
	return nil
}

// whiteout applies ".wh.<name>" or ".wh..wh..opq" found in dir.
func (a *applier) whiteout(dir, base string) error {
	overlay := a.opts.Whiteouts == OverlayWhiteouts
	a.dropCache() // a whiteout may remove the cached directory
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if base != whiteoutOpaque && (name == "" || name == "." || name == "..") {
		return fmt.Errorf("whiteout of %q: %w", name, errdefs.ErrInvalidArgument)
	}
	// In an upper dir the parent may exist only in a lower layer: make it.
	// In a full copy a missing parent means there is nothing to delete.
	pfd, err := a.openDir(dir, overlay)
	if err != nil {
		if !overlay && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)) {
			return nil
		}
		return err
	}
	defer unix.Close(pfd)
	if base == whiteoutOpaque {
		if overlay {
			if err := unix.Fsetxattr(pfd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return &os.PathError{Op: "setxattr trusted.overlay.opaque", Path: dir, Err: err}
			}
			return nil
		}
		return a.emptyLower(pfd, dir)
	}
	if err := removeAllAt(pfd, name); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	delete(a.created, path.Join(dir, name))
	if !overlay {
		return nil
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return &os.PathError{Op: "mknodat (whiteout)", Path: path.Join(dir, name), Err: err}
	}
	if err := unix.Fchownat(pfd, name, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fchownat (whiteout)", Path: path.Join(dir, name), Err: err}
	}
	return nil
}

// emptyLower removes from the directory rel (open as fd) everything this
// layer did not create, recursing into directories it did.
func (a *applier) emptyLower(fd int, rel string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("opaque %s: %w", rel, err)
	}
	for _, n := range names {
		crel := path.Join(rel, n)
		if !a.created[crel] {
			if err := removeAllAt(fd, n); err != nil {
				return fmt.Errorf("opaque %s: %w", rel, err)
			}
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // not a directory: this layer's file, kept
		}
		err = a.emptyLower(cfd, crel)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// finish sets directory times last, since creating entries in a directory
// changes its mtime.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		dir, base := splitPath(d.rel)
		pfd, err := a.openDir(dir, false)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				continue // removed by a later entry
			}
			return err
		}
		err = unix.UtimesNanoAt(pfd, base, timespecs(d.atime, d.mtime), unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "utimensat", Path: d.rel, Err: err}
		}
	}
	return nil
}

func timespecs(atime, mtime time.Time) []unix.Timespec {
	if atime.IsZero() {
		atime = mtime
	}
	return []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}
