package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WriteDiff writes the overlay upper directory upperDir to w as an OCI
// layer tar: a 0/0 character device becomes a ".wh.<name>" entry and a
// directory with trusted.overlay.opaque=y (or user.overlay.opaque=y) gets a
// ".wh..wh..opq" entry. Sockets are skipped; files with several links in
// upperDir become one file and hardlinks to it.
//
// The output is reproducible: entries in lexical order, numeric owners
// without names, mtimes rounded to the second, no atime or ctime, and a PAX
// header only for an entry that needs one (long names, xattrs).
func WriteDiff(ctx context.Context, w io.Writer, upperDir string) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	buf := make([]byte, 128<<10)
	err := filepath.WalkDir(upperDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(upperDir, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		hdr := &tar.Header{
			Name:    name,
			Mode:    int64(st.Mode & 0o7777),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			if st.Rdev == 0 {
				dir, base := path.Split(name)
				return tw.WriteHeader(&tar.Header{
					Name: dir + whiteoutPrefix + base, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0),
				})
			}
			hdr.Typeflag = tar.TypeChar
		case unix.S_IFBLK:
			hdr.Typeflag = tar.TypeBlock
		case unix.S_IFIFO:
			hdr.Typeflag = tar.TypeFifo
		case unix.S_IFSOCK:
			return nil
		case unix.S_IFLNK:
			hdr.Typeflag = tar.TypeSymlink
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFDIR:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case unix.S_IFREG:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = st.Size
			if st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = name
				}
			}
		}
		if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		}
		opaque, err := readXattrs(p, hdr)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write header %s: %w", name, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			if err := copyFile(tw, p, hdr.Size, buf); err != nil {
				return err
			}
		}
		if opaque {
			return tw.WriteHeader(&tar.Header{
				Name: name + "/" + whiteoutOpaque, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0),
			})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write diff of %s: %w", upperDir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write diff of %s: %w", upperDir, err)
	}
	return nil
}

func copyFile(w io.Writer, p string, size int64, buf []byte) error {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// Copy exactly the size in the header: a file that grows or shrinks
	// while we read must not corrupt the tar.
	if _, err := io.CopyBuffer(w, io.LimitReader(f, size), buf); err != nil {
		return fmt.Errorf("copy %s: %w", p, err)
	}
	return nil
}

// readXattrs adds p's xattrs to hdr as PAX records, leaving out overlayfs's
// own, and reports whether p is an opaque directory.
func readXattrs(p string, hdr *tar.Header) (opaque bool, err error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return false, nil
		}
		return false, &os.PathError{Op: "llistxattr", Path: p, Err: err}
	}
	if size == 0 {
		return false, nil
	}
	list := make([]byte, size)
	n, err := unix.Llistxattr(p, list)
	if err != nil {
		return false, &os.PathError{Op: "llistxattr", Path: p, Err: err}
	}
	for _, name := range strings.Split(strings.TrimRight(string(list[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		val, err := lgetxattr(p, name)
		if err != nil {
			return false, err
		}
		if forbiddenXattr(name) {
			if (name == "trusted.overlay.opaque" || name == "user.overlay.opaque") && string(val) == "y" {
				opaque = hdr.Typeflag == tar.TypeDir
			}
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattr+name] = string(val)
	}
	return opaque, nil
}

func lgetxattr(p, name string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<20 {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		return buf[:n], nil
	}
}
