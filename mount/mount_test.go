package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		opts      []string
		wantFlags uintptr
		wantData  []string
	}{
		{[]string{"ro", "nosuid"}, unix.MS_RDONLY | unix.MS_NOSUID, nil},
		{[]string{"rbind", "rw"}, unix.MS_BIND | unix.MS_REC, nil},
		{[]string{"ro", "rw"}, 0, nil},
		{[]string{"lowerdir=/a:/b", "index=off", "rprivate"}, unix.MS_PRIVATE | unix.MS_REC, []string{"lowerdir=/a:/b", "index=off"}},
	}
	for _, tt := range tests {
		flags, data := parseOptions(tt.opts)
		if flags != tt.wantFlags || !reflect.DeepEqual(data, tt.wantData) {
			t.Errorf("parseOptions(%q) = %#x, %q; want %#x, %q", tt.opts, flags, data, tt.wantFlags, tt.wantData)
		}
	}
}

func TestCompactLowerdir(t *testing.T) {
	long := "/var/lib/berth/" + strings.Repeat("x", 200) + "/snapshots"
	var lowers []string
	for i := range 30 {
		lowers = append(lowers, fmt.Sprintf("%s/%d/fs", long, i))
	}
	dir, opts := compactLowerdir([]string{"index=off", "lowerdir=" + strings.Join(lowers, ":"), "upperdir=/u", "workdir=/w"})
	if dir != long {
		t.Fatalf("compactLowerdir dir = %q, want %q", dir, long)
	}
	if want := "lowerdir=0/fs:1/fs"; !strings.HasPrefix(opts[1], want) {
		t.Errorf("compactLowerdir lowerdir = %q, want prefix %q", opts[1], want)
	}
	if dir, _ := compactLowerdir([]string{"lowerdir=/a:/b"}); dir != "" {
		t.Errorf("short options rewritten from %q", dir)
	}
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBindReadOnly(t *testing.T) {
	testenv.RequiresRoot(t)
	dir := t.TempDir()
	src, target := filepath.Join(dir, "src"), filepath.Join(dir, "target")
	mkdirs(t, src, target)
	os.WriteFile(filepath.Join(src, "f"), []byte("hi"), 0o644)

	if err := (Mount{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}).Mount(target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountAll(target, unix.MNT_DETACH) })
	if b, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(b) != "hi" {
		t.Fatalf("read through bind = %q, %v", b, err)
	}
	err := os.WriteFile(filepath.Join(target, "g"), nil, 0o644)
	if !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to ro bind: err = %v, want EROFS", err)
	}
	// A second, writable bind stacks on top; UnmountAll takes both off.
	if err := (Mount{Type: "bind", Source: src, Options: []string{"bind"}}).Mount(target); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "g"), nil, 0o644); err != nil {
		t.Fatalf("write to rw bind: %v", err)
	}
	if err := UnmountAll(target, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "f")); !os.IsNotExist(err) {
		t.Fatalf("after UnmountAll target still shows the source: %v", err)
	}
	if err := Unmount(target, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Unmount of a plain dir: err = %v, want EINVAL", err)
	}
}

func TestOverlayManyLowers(t *testing.T) {
	testenv.RequiresRoot(t)
	// A long common parent makes the absolute lowerdir list far beyond a page.
	base := filepath.Join(t.TempDir(), strings.Repeat("p", 200))
	const n = 40
	var lowers []string
	for i := range n {
		d := filepath.Join(base, fmt.Sprint(i), "fs")
		mkdirs(t, d)
		os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), []byte(fmt.Sprint(i)), 0o644)
		os.WriteFile(filepath.Join(d, "top"), []byte(fmt.Sprint(i)), 0o644)
		lowers = append([]string{d}, lowers...) // lowerdir lists the top layer first
	}
	upper, work, target := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	mkdirs(t, upper, work, target)
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "lowerdir=" + strings.Join(lowers, ":"), "upperdir=" + upper, "workdir=" + work,
	}}
	if l := len(strings.Join(m.Options, ",")); l <= os.Getpagesize() {
		t.Fatalf("test options are only %d bytes", l)
	}
	cwd, _ := os.Getwd()
	if err := All([]Mount{m}, target); err != nil {
		t.Fatal(err)
	}
	defer UnmountAll(target, unix.MNT_DETACH)
	if now, _ := os.Getwd(); now != cwd {
		t.Errorf("Mount changed the process cwd from %q to %q", cwd, now)
	}
	for i := range n {
		if _, err := os.Stat(filepath.Join(target, fmt.Sprintf("f%d", i))); err != nil {
			t.Errorf("layer %d not visible: %v", i, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(target, "top")); string(b) != fmt.Sprint(n-1) {
		t.Errorf("top = %q, want the last layer's %d", b, n-1)
	}
	if err := os.Remove(filepath.Join(target, "f0")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(upper, "f0")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("deleting through overlay left no whiteout in upper: %v %v", fi, err)
	}
}

func TestWithTempMount(t *testing.T) {
	testenv.RequiresRoot(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	var seen string
	err := WithTempMount(context.Background(), []Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, func(root string) error {
		seen = root
		if _, err := os.Stat(filepath.Join(root, "f")); err != nil {
			return err
		}
		return errors.New("from fn")
	})
	if err == nil || err.Error() != "from fn" {
		t.Fatalf("WithTempMount err = %v, want fn's error", err)
	}
	if _, err := os.Stat(seen); !os.IsNotExist(err) {
		t.Errorf("temp mount dir %s left behind: %v", seen, err)
	}
	if _, err := os.Stat(filepath.Join(src, "f")); err != nil {
		t.Errorf("source lost its content: %v", err)
	}
	err = WithTempMount(context.Background(), []Mount{{Type: "bind", Source: "/nonexistent-berth", Options: []string{"bind"}}}, func(string) error {
		t.Error("fn called after failed mount")
		return nil
	})
	if err == nil {
		t.Error("WithTempMount of a missing source: want error")
	}
}
