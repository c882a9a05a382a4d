package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	"golang.org/x/sys/unix"
)

// ent is one entry of a test tar.
type ent struct {
	name, link, body string
	typ              byte
	mode             int64
	uid, gid         int
	xattrs           map[string]string
}

func file(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg, mode: 0o644} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, target string) ent {
	return ent{name: name, link: target, typ: tar.TypeLink, mode: 0o644}
}
func whiteout(dir, name string) ent    { return file(filepath.Join(dir, ".wh."+name), "") }
func opaque(dir string) ent            { return file(filepath.Join(dir, ".wh..wh..opq"), "") }
func device(name string, typ byte) ent { return ent{name: name, typ: typ, mode: 0o666} }

var mtime = time.Unix(1700000000, 0)

func mktar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Size: int64(len(e.body)), ModTime: mtime, Devmajor: 1, Devminor: 3}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// dump describes a tree: one line per entry with type, mode, owner, size,
// content hash or link target, xattrs and (for non-directories) mtime.
func dump(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		unix.Lstat(p, &st)
		line := fmt.Sprintf("%s %o %d:%d", rel, st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %x nlink=%d", sha256.Sum256(b), st.Nlink)
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case unix.S_IFCHR, unix.S_IFBLK:
			line += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			line += fmt.Sprintf(" mtime=%d", st.Mtim.Sec)
		}
		if rel != "." {
			sz, _ := unix.Llistxattr(p, nil)
			if sz > 0 {
				b := make([]byte, sz)
				unix.Llistxattr(p, b)
				names := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
				sort.Strings(names)
				for _, n := range names {
					v, _ := lgetxattr(p, n)
					line += fmt.Sprintf(" %s=%q", n, v)
				}
			}
		}
		lines = append(lines, line)
		return nil
	})
	return strings.Join(lines, "\n")
}

func apply(t testing.TB, dst string, w Whiteouts, ents ...ent) (Stats, error) {
	t.Helper()
	return ApplyStats(context.Background(), dst, bytes.NewReader(mktar(t, ents...)), ApplyOptions{Whiteouts: w})
}

func mustApply(t testing.TB, dst string, w Whiteouts, ents ...ent) Stats {
	t.Helper()
	st, err := apply(t, dst, w, ents...)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return st
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestApplyBasic(t *testing.T) {
	testenv.RequiresRoot(t)
	dst := t.TempDir()
	suid := file("bin/su", "su")
	suid.mode = 0o4755
	owned := file("home/u/f", "x")
	owned.uid, owned.gid = 1000, 1001
	x := file("x", "xattr")
	x.xattrs = map[string]string{"user.k": "v", "trusted.overlay.opaque": "y", "user.overlay.redirect": "/etc"}
	fifo := ent{name: "fifo", typ: tar.TypeFifo, mode: 0o600}
	data := mktar(t, dir("bin/"), suid, file("bin/sh", "sh"), hardlink("bin/ash", "bin/sh"),
		symlink("bin/link", "/bin/sh"), owned, x, fifo)
	data = append(data, make([]byte, 1024)...) // trailing zeros after the end marker
	n, err := Apply(context.Background(), dst, bytes.NewReader(data), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) {
		t.Errorf("Apply read %d bytes, want all %d", n, len(data))
	}
	fi, err := os.Stat(filepath.Join(dst, "bin/su"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/su mode = %v, %v; want setuid 0755", fi.Mode(), err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("bin/su mtime = %v, want %v", fi.ModTime(), mtime)
	}
	var a, b unix.Stat_t
	unix.Stat(filepath.Join(dst, "bin/sh"), &a)
	unix.Stat(filepath.Join(dst, "bin/ash"), &b)
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("bin/ash is not a hardlink of bin/sh")
	}
	if l, _ := os.Readlink(filepath.Join(dst, "bin/link")); l != "/bin/sh" {
		t.Errorf("bin/link -> %q", l)
	}
	var ls unix.Stat_t
	unix.Lstat(filepath.Join(dst, "bin/link"), &ls)
	if ls.Mtim.Sec != mtime.Unix() {
		t.Errorf("symlink mtime = %d, want %d", ls.Mtim.Sec, mtime.Unix())
	}
	unix.Lstat(filepath.Join(dst, "home/u/f"), &a)
	if a.Uid != 1000 || a.Gid != 1001 {
		t.Errorf("home/u/f owner = %d:%d", a.Uid, a.Gid)
	}
	if v, err := lgetxattr(filepath.Join(dst, "x"), "user.k"); err != nil || string(v) != "v" {
		t.Errorf("xattr user.k = %q, %v", v, err)
	}
	for _, n := range []string{"trusted.overlay.opaque", "user.overlay.redirect"} {
		if _, err := lgetxattr(filepath.Join(dst, "x"), n); err == nil {
			t.Errorf("xattr %s taken from the tar", n)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dst, "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo = %v, %v", fi, err)
	}
	fi, _ = os.Stat(filepath.Join(dst, "bin"))
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("dir mtime = %v, want %v (set after its children)", fi.ModTime(), mtime)
	}
}

func TestApplyCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(mktar(t, file("a", "b"))), ApplyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with a cancelled ctx: %v", err)
	}
}

func TestDecompressStream(t *testing.T) {
	plain := mktar(t, file("a", strings.Repeat("hello ", 1000)))
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := CompressStream(&buf, c)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(plain)
			w.Close()
			rc, got, err := DecompressStream(&buf)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if got != c {
				t.Errorf("DecompressStream compression = %v, want %v", got, c)
			}
			b, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(b, plain) {
				t.Errorf("DecompressStream(%v) round trip: %d bytes, %v", c, len(b), err)
			}
		})
	}
	rc, c, err := DecompressStream(bytes.NewReader(nil))
	if err != nil || c != Uncompressed {
		t.Fatalf("empty stream: %v %v", c, err)
	}
	rc.Close()
}

// Wanted outcomes of a hostile tar besides a specific error class.
var (
	errAny   = errors.New("any error")
	errMaybe = errors.New("error or success, as long as nothing outside changes")
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }
