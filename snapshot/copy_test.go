package snapshot

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestCopyTree(t *testing.T) {
	testenv.RequiresRoot(t)
	src, dst := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "d"), 0o750)
	os.WriteFile(filepath.Join(src, "d/f"), []byte("data"), 0o755)
	unix.Chmod(filepath.Join(src, "d/f"), 0o4755)
	os.Link(filepath.Join(src, "d/f"), filepath.Join(src, "hl"))
	os.Symlink("/etc/passwd", filepath.Join(src, "sl"))
	unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	unix.Mkfifo(filepath.Join(src, "fifo"), 0o600)
	unix.Lchown(filepath.Join(src, "d"), 1000, 1001)
	unix.Setxattr(filepath.Join(src, "d/f"), "user.k", []byte("v"), 0)
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err == nil {
		defer l.Close()
	}
	if err := copyTree(context.Background(), dst, src); err != nil {
		t.Fatal(err)
	}
	var a, b unix.Stat_t
	unix.Lstat(filepath.Join(dst, "d/f"), &a)
	unix.Lstat(filepath.Join(dst, "hl"), &b)
	if a.Ino != b.Ino || a.Mode&0o7777 != 0o4755 {
		t.Errorf("d/f: ino %d vs hl %d, mode %o; want one inode, 04755", a.Ino, b.Ino, a.Mode)
	}
	unix.Lstat(filepath.Join(dst, "d"), &a)
	if a.Uid != 1000 || a.Gid != 1001 || a.Mode&0o777 != 0o750 {
		t.Errorf("d: %d:%d %o", a.Uid, a.Gid, a.Mode)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "sl")); l != "/etc/passwd" {
		t.Errorf("sl -> %q", l)
	}
	unix.Lstat(filepath.Join(dst, "null"), &a)
	if a.Mode&unix.S_IFMT != unix.S_IFCHR || a.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("null: mode %o rdev %d", a.Mode, a.Rdev)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v %v", fi, err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dst, "d/f"), "user.k", buf); err != nil || string(buf[:n]) != "v" {
		t.Errorf("xattr: %q %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "sock")); !os.IsNotExist(err) {
		t.Errorf("socket copied: %v", err)
	}
}
