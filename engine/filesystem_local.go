package engine

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The host side of docker cp. The CLI copies between a container and
// local files; these do the local half with the same care as the
// container half: a tar is written without following links below the
// path asked for, and unpacked so that nothing in it, links included, can
// land outside the directory it is unpacked into.

// ArchiveLocal writes a tar of the local path p to w: a file, or a
// directory and everything below it, its top entry named name (docker's
// archive.TarResourceRebase). Links in p's parents are followed; p itself
// is followed only when it ends in "/" or "/.".
func ArchiveLocal(ctx context.Context, w io.Writer, p, name string) error {
	abs, err := localAbs(p)
	if err != nil {
		return err
	}
	v, err := newView("/", nil)
	if err != nil {
		return err
	}
	defer v.close()
	resolved, err := v.resolve(abs, assertsDir(abs))
	if err != nil {
		return err
	}
	if _, _, err := v.lstat(resolved); err != nil {
		return err
	}
	tw := newTreeWriter(w, v, false)
	if err := tw.writePath(ctx, resolved, name); err != nil {
		return err
	}
	return tw.close()
}

// ExtractLocal unpacks the tar r into the local directory dir as docker cp
// does on the host: what it creates belongs to the caller, an existing
// directory is never replaced by a non-directory nor the other way round,
// and every entry, link or not, stays inside dir.
func ExtractLocal(ctx context.Context, r io.Reader, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	v, err := newView(abs, nil)
	if err != nil {
		return err
	}
	defer v.close()
	v.prefix = abs
	return v.extract(ctx, "/", r, extractOptions{owner: &[2]int{os.Geteuid(), os.Getegid()}})
}

// localAbs makes p absolute, keeping a trailing "/" or "/.".
func localAbs(p string) (string, error) {
	if filepath.IsAbs(p) {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	abs := absPath(filepath.Join(wd, p))
	if assertsDir(p) && !assertsDir(abs) {
		abs = strings.TrimSuffix(abs, "/") + "/."
	}
	return abs, nil
}
