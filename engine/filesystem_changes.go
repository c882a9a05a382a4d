package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// What a container changed in its filesystem, as docker diff lists it and
// docker commit archives it: the container's writable layer against the
// image's layers.
//
// Docker keeps the files the runtime makes as mount points (/etc/hosts,
// /proc, ...) in an "init" layer between the image and the container's
// own, so they never show. berth's runtime makes them in the container's
// layer; they are left out here instead (initPaths), and a directory that
// holds nothing else of the container's — /etc, when the runtime alone
// touched it — with them.

// initPaths are the paths of Docker's init layer.
var initPaths = map[string]bool{
	"/dev/pts": true, "/dev/shm": true, "/dev/console": true, "/proc": true, "/sys": true,
	"/.dockerenv": true, "/etc/resolv.conf": true, "/etc/hosts": true, "/etc/hostname": true, "/etc/mtab": true,
}

// change is one entry of a layer's changes.
type change struct {
	path string
	kind container.ChangeType
}

// Changes lists what the container changed in its filesystem (docker
// diff): "A" added, "C" changed, "D" deleted, parents before children.
func (e *Engine) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	chs, err := e.layerChanges(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]container.FilesystemChange, len(chs))
	for i, ch := range chs {
		out[i] = container.FilesystemChange{Path: ch.path, Kind: ch.kind}
	}
	return out, nil
}

// layerChanges computes the container's changes with the storage
// driver's method: the overlay upper directory against the lower ones, or
// the vfs copy against its parent's.
func (e *Engine) layerChanges(ctx context.Context, c *Container) ([]change, error) {
	upper, lowers, release, err := e.layerDirs(ctx, c)
	if err != nil {
		return nil, err
	}
	defer release()
	var chs []change
	if e.driver == "vfs" {
		chs, err = treeChanges(ctx, upper, lowers[0])
	} else {
		chs, err = overlayChanges(ctx, upper, lowers)
	}
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.Name, err)
	}
	return chs, nil
}

// layerDirs returns the container's layer directory and the image's:
// overlay's lower directories top first, or the vfs parent's full copy
// (held by a view until release).
func (e *Engine) layerDirs(ctx context.Context, c *Container) (string, []string, func(), error) {
	upper, err := e.snapshots.UpperDir(ctx, c.Snapshot)
	if err != nil {
		return "", nil, nil, fmt.Errorf("rootfs of container %s: %w", c.Name, err)
	}
	if e.driver == "vfs" {
		info, err := e.snapshots.Stat(ctx, c.Snapshot)
		if err != nil {
			return "", nil, nil, err
		}
		key := "diff-" + randomHex(8)
		ms, err := e.snapshots.View(ctx, key, info.Parent)
		if err != nil {
			return "", nil, nil, err
		}
		release := func() { e.snapshots.Remove(context.WithoutCancel(ctx), key) }
		if len(ms) != 1 || ms[0].Type != "bind" {
			release()
			return "", nil, nil, fmt.Errorf("view of %s: unexpected mounts %v: %w", info.Parent, ms, errdefs.ErrNotImplemented)
		}
		return upper, []string{ms[0].Source}, release, nil
	}
	ms, err := e.snapshots.Mounts(ctx, c.Snapshot)
	if err != nil {
		return "", nil, nil, err
	}
	var lowers []string
	for _, m := range ms {
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lowers = append(lowers, strings.Split(v, ":")...)
			}
		}
	}
	return upper, lowers, func() {}, nil
}

// overlayChanges walks an overlay upper directory as docker's
// archive.OverlayChanges does: a whiteout is a deletion, an opaque
// directory that a lower layer has is one too (its contents show as
// added), what the lower layers have is changed and the rest added; a
// directory with the lower one's mode and owner is no change of its own,
// but the parent of an addition or deletion always is.
//
// Docker also requires the same size and mtime of such a directory; here
// the runtime's mount points change them in /etc and /dev, so they do not
// count: a directory whose entries were created or removed shows through
// those anyway.
func overlayChanges(ctx context.Context, upper string, lowers []string) ([]change, error) {
	var out []change
	changedDirs := map[string]bool{}
	err := filepath.WalkDir(upper, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, hp)
		if err != nil || rel == "." {
			return err
		}
		p := "/" + filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(hp, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: hp, Err: err}
		}
		whiteout := st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
		if initPaths[p] && !whiteout {
			if isDir(&st) {
				return fs.SkipDir
			}
			return nil
		}
		ch := change{path: p, kind: container.ChangeAdd}
		lower, inLower := lowerStat(lowers, p)
		switch {
		case whiteout:
			ch.kind = container.ChangeDelete
		case isDir(&st) && inLower && opaqueDir(hp):
			ch.kind = container.ChangeDelete
		case inLower:
			ch.kind = container.ChangeModify
			if isDir(&st) && isDir(&lower) && st.Mode == lower.Mode && st.Uid == lower.Uid && st.Gid == lower.Gid {
				return nil // only a parent of what changed
			}
		case isDir(&st) && (p == "/etc" || p == "/dev"):
			return nil // made for the runtime's mount points
		}
		if isDir(&st) {
			changedDirs[p] = true
		}
		if ch.kind != container.ChangeModify {
			if parent := path.Dir(p); parent != "/" && !changedDirs[parent] {
				out = append(out, change{path: parent, kind: container.ChangeModify})
				changedDirs[parent] = true
			}
		}
		out = append(out, ch)
		return nil
	})
	return out, err
}

// sameFsTime compares mtimes as docker does: equal, or the same second
// with one of them whole (tar keeps seconds only).
func sameFsTime(a, b unix.Timespec) bool {
	return a == b || (a.Sec == b.Sec && (a.Nsec == 0 || b.Nsec == 0))
}

// lowerStat finds p in the lower layers, top first; a whiteout there
// means it is not.
func lowerStat(lowers []string, p string) (unix.Stat_t, bool) {
	var st unix.Stat_t
	for _, l := range lowers {
		err := unix.Lstat(filepath.Join(l, p), &st)
		if err == nil {
			return st, !(st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0)
		}
		if errors.Is(err, unix.ENOTDIR) {
			return st, false
		}
	}
	return st, false
}

// opaqueDir reports whether an overlay directory hides the lower ones'.
func opaqueDir(p string) bool {
	buf := make([]byte, 8)
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(p, name, buf); err == nil && string(buf[:n]) == "y" {
			return true
		}
	}
	return false
}

// treeChanges compares a vfs snapshot's full copy with its parent's, as
// docker's archive.ChangesDirs does: mode, owner, device and, but for
// directories, size and mtime; file capabilities. A directory with
// changes below it is changed; a deleted directory is one deletion.
func treeChanges(ctx context.Context, newDir, oldDir string) ([]change, error) {
	var out []change
	var walk func(p string, oldIsDir bool) error
	walk = func(p string, oldIsDir bool) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		newNames, err := dirNames(filepath.Join(newDir, p))
		if err != nil {
			return err
		}
		oldNames := map[string]bool{}
		if oldIsDir {
			names, err := dirNames(filepath.Join(oldDir, p))
			if err != nil {
				return err
			}
			for _, n := range names {
				oldNames[n] = true
			}
		}
		for _, n := range newNames {
			cp := path.Join(p, n)
			had := oldNames[n]
			delete(oldNames, n)
			if initPaths[cp] {
				continue
			}
			var nst, ost unix.Stat_t
			if err := unix.Lstat(filepath.Join(newDir, cp), &nst); err != nil {
				return err
			}
			had = had && unix.Lstat(filepath.Join(oldDir, cp), &ost) == nil
			at := len(out)
			switch {
			case !had:
				out = append(out, change{path: cp, kind: container.ChangeAdd})
			case statDifferent(&ost, &nst) || !bytes.Equal(capability(filepath.Join(oldDir, cp)), capability(filepath.Join(newDir, cp))):
				out = append(out, change{path: cp, kind: container.ChangeModify})
			}
			if !isDir(&nst) {
				continue
			}
			before := len(out)
			if err := walk(cp, had && isDir(&ost)); err != nil {
				return err
			}
			if len(out) > before && before == at {
				// Changes below an unchanged directory: it is changed too,
				// listed before them.
				out = append(out, change{})
				copy(out[at+1:], out[at:])
				out[at] = change{path: cp, kind: container.ChangeModify}
			}
		}
		for _, n := range sortedKeys(oldNames) {
			out = append(out, change{path: path.Join(p, n), kind: container.ChangeDelete})
		}
		return nil
	}
	if err := walk("/", true); err != nil {
		return nil, err
	}
	return out, nil
}

// statDifferent is docker's test of a changed file.
func statDifferent(a, b *unix.Stat_t) bool {
	if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev {
		return true
	}
	return !isDir(a) && (!sameFsTime(a.Mtim, b.Mtim) || a.Size != b.Size)
}

func capability(p string) []byte {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, "security.capability", buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func dirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writeLayer writes the container's changes as an OCI layer tar: the
// overlay upper directory through archive.WriteDiff, keeping only the
// changes and the directories above them; for vfs, each change from the
// copy, and a whiteout for each deletion.
func (e *Engine) writeLayer(ctx context.Context, c *Container, w io.Writer) error {
	chs, err := e.layerChanges(ctx, c)
	if err != nil {
		return err
	}
	upper, _, release, err := e.layerDirs(ctx, c)
	if err != nil {
		return err
	}
	defer release()
	if e.driver == "vfs" {
		return changesTar(ctx, w, upper, chs)
	}
	keep := map[string]bool{}
	for _, ch := range chs {
		for p := ch.path; p != "/" && !keep[p]; p = path.Dir(p) {
			keep[p] = true
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.WriteDiff(ctx, pw, upper)) }()
	defer pr.Close()
	tr, tw := tar.NewReader(pr), tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		if !keep[diffPath(hdr.Name)] {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// diffPath is the path a layer entry is about: its own, its whiteout's,
// or for an opaque marker its directory's.
func diffPath(name string) string {
	p := "/" + strings.Trim(name, "/")
	dir, base := path.Split(p)
	switch {
	case base == ".wh..wh..opq":
		return path.Clean(dir)
	case strings.HasPrefix(base, ".wh."):
		return dir + strings.TrimPrefix(base, ".wh.")
	}
	return p
}

// changesTar writes changes from dir (a vfs snapshot) as a layer tar.
func changesTar(ctx context.Context, w io.Writer, dir string, chs []change) error {
	v, err := newView(dir, nil)
	if err != nil {
		return err
	}
	defer v.close()
	tw := newTreeWriter(w, v, false)
	tw.shallow = true
	sort.Slice(chs, func(i, j int) bool { return chs[i].path < chs[j].path })
	for _, ch := range chs {
		if ch.kind == container.ChangeDelete {
			d, b := path.Split(ch.path)
			hdr := &tar.Header{Name: strings.TrimPrefix(d, "/") + ".wh." + b, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
			if err := tw.tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		if err := tw.writePath(ctx, ch.path, strings.TrimPrefix(ch.path, "/")); err != nil {
			return err
		}
	}
	return tw.close()
}
