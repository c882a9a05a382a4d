package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"golang.org/x/sys/unix"
)

// sandbox makes <tmp>/dst (the layer root) next to <tmp>/outside, a
// sentinel tree that no layer may change.
func sandbox(t testing.TB, base string) (dst, outside string) {
	t.Helper()
	dst, outside = filepath.Join(base, "dst"), filepath.Join(base, "outside")
	for _, d := range []string{dst, filepath.Join(outside, "dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(outside, "dir", "f"), []byte("f"), 0o644)
	os.Symlink("secret", filepath.Join(outside, "link"))
	return dst, outside
}

func TestApplyHostile(t *testing.T) {
	testenv.RequiresRoot(t)
	tests := []struct {
		name    string
		ents    func(outside string) []ent
		wantErr error // nil: must succeed; errAny: any error
		check   func(t *testing.T, dst string, st Stats, mode Whiteouts)
	}{
		{name: "dotdot", wantErr: errdefs.ErrInvalidArgument, ents: func(string) []ent {
			return []ent{file("../outside/secret", "pwned")}
		}},
		{name: "dotdot inside", wantErr: errdefs.ErrInvalidArgument, ents: func(string) []ent {
			return []ent{file("a/b/../../../outside/secret", "pwned")}
		}},
		{name: "absolute", ents: func(outside string) []ent {
			return []ent{file(filepath.Join(outside, "secret"), "pwned"), file("/etc/passwd", "root::0:0")}
		}, check: func(t *testing.T, dst string, _ Stats, _ Whiteouts) {
			if !exists(filepath.Join(dst, "etc/passwd")) {
				t.Error("absolute name not placed under dst")
			}
		}},
		{name: "symlink escape then write", wantErr: errAny, ents: func(outside string) []ent {
			return []ent{symlink("evil", outside), file("evil/secret", "pwned")}
		}},
		{name: "relative symlink escape then write", wantErr: errAny, ents: func(string) []ent {
			return []ent{symlink("evil", "../outside"), file("evil/dir/f", "pwned")}
		}},
		{name: "symlink to root stays in root", ents: func(string) []ent {
			return []ent{symlink("r", "/"), file("r/etc/x", "in root"), symlink("up", "../../../.."), file("up/y", "in root")}
		}, check: func(t *testing.T, dst string, _ Stats, _ Whiteouts) {
			if !exists(filepath.Join(dst, "etc/x")) || !exists(filepath.Join(dst, "y")) {
				t.Error("writes through in-root symlinks did not land in dst")
			}
		}},
		{name: "symlink chain", wantErr: errAny, ents: func(outside string) []ent {
			return []ent{symlink("a", "b"), symlink("b", "c/../../outside"), dir("c/"), file("a/secret", "pwned")}
		}},
		{name: "file over symlink", ents: func(outside string) []ent {
			return []ent{symlink("f", filepath.Join(outside, "secret")), file("f", "mine")}
		}, check: func(t *testing.T, dst string, _ Stats, _ Whiteouts) {
			if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "mine" {
				t.Errorf("f = %q, want the layer's file replacing the symlink", b)
			}
		}},
		{name: "dir over symlink", ents: func(outside string) []ent {
			return []ent{symlink("d", outside), dir("d/"), file("d/secret", "mine")}
		}},
		{name: "hardlink dotdot", wantErr: errdefs.ErrInvalidArgument, ents: func(string) []ent {
			return []ent{hardlink("h", "../outside/secret")}
		}},
		{name: "hardlink absolute", wantErr: errAny, ents: func(outside string) []ent {
			return []ent{hardlink("h", filepath.Join(outside, "secret"))}
		}},
		{name: "hardlink through symlink", wantErr: errAny, ents: func(outside string) []ent {
			return []ent{symlink("s", outside), hardlink("h", "s/secret")}
		}},
		{name: "hardlink to symlink then write", ents: func(outside string) []ent {
			return []ent{symlink("s", filepath.Join(outside, "secret")), hardlink("h", "s"), file("h", "pwned")}
		}},
		{name: "hardlink to dir", wantErr: errAny, ents: func(string) []ent {
			return []ent{dir("d/"), hardlink("h", "d")}
		}},
		{name: "device nodes", ents: func(string) []ent {
			return []ent{device("dev/null", tar.TypeChar), device("dev/sda", tar.TypeBlock), file("ok", "")}
		}, check: func(t *testing.T, dst string, st Stats, _ Whiteouts) {
			if st.SkippedDevices != 2 || exists(filepath.Join(dst, "dev/null")) || exists(filepath.Join(dst, "dev/sda")) {
				t.Errorf("devices: skipped %d, want 2 and none created", st.SkippedDevices)
			}
		}},
		{name: "file replaces dir", ents: func(string) []ent {
			return []ent{dir("d/"), file("d/x", "x"), file("d", "now a file")}
		}, check: func(t *testing.T, dst string, _ Stats, _ Whiteouts) {
			if b, err := os.ReadFile(filepath.Join(dst, "d")); err != nil || string(b) != "now a file" {
				t.Errorf("d = %q, %v", b, err)
			}
		}},
		{name: "whiteout of missing path", ents: func(string) []ent {
			return []ent{whiteout("no/such", "thing"), whiteout("", "nothing")}
		}, check: func(t *testing.T, dst string, _ Stats, mode Whiteouts) {
			if mode == NaiveWhiteouts && exists(filepath.Join(dst, "no")) {
				t.Error("naive whiteout created its parent")
			}
		}},
		{name: "whiteout dotdot", wantErr: errdefs.ErrInvalidArgument, ents: func(string) []ent {
			return []ent{file("d/.wh..", "")}
		}},
		{name: "whiteout through symlink", wantErr: errMaybe, ents: func(outside string) []ent {
			return []ent{symlink("s", outside), whiteout("s", "secret"), opaque("s")}
		}},
		{name: "forged overlay xattr", ents: func(string) []ent {
			d := dir("d/")
			d.xattrs = map[string]string{"trusted.overlay.opaque": "y"}
			return []ent{d}
		}, check: func(t *testing.T, dst string, _ Stats, _ Whiteouts) {
			if _, err := lgetxattr(filepath.Join(dst, "d"), "trusted.overlay.opaque"); err == nil {
				t.Error("trusted.overlay.opaque taken from the tar")
			}
		}},
	}
	for _, tt := range tests {
		for _, mode := range []Whiteouts{NaiveWhiteouts, OverlayWhiteouts} {
			t.Run(tt.name+"/"+[]string{"naive", "overlay"}[mode], func(t *testing.T) {
				base := t.TempDir()
				dst, outside := sandbox(t, base)
				before, beforeBase := dump(t, outside), dump(t, base)
				st, err := apply(t, dst, mode, tt.ents(outside)...)
				switch {
				case tt.wantErr == errMaybe:
				case tt.wantErr == nil && err != nil:
					t.Errorf("Apply: %v, want success", err)
				case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errorsIs(err, tt.wantErr):
					t.Errorf("Apply: err = %v, want %v", err, tt.wantErr)
				}
				if after := dump(t, outside); after != before {
					t.Errorf("outside changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				if entries, _ := os.ReadDir(base); len(entries) != 2 {
					t.Errorf("new entries next to dst: %v (tree before:\n%s)", entries, beforeBase)
				}
				if tt.check != nil && err == nil {
					tt.check(t, dst, st, mode)
				}
			})
		}
	}
}

func TestWhiteoutsNaive(t *testing.T) {
	testenv.RequiresRoot(t)
	dst := t.TempDir()
	mustApply(t, dst, NaiveWhiteouts, dir("a/"), file("a/gone", "1"), file("a/kept", "1"),
		dir("o/"), file("o/lower", "1"), dir("o/sub/"), file("o/sub/lower", "1"), dir("rm/"), file("rm/x", "1"))
	mustApply(t, dst, NaiveWhiteouts, whiteout("a", "gone"), whiteout("", "rm"),
		dir("o/"), file("o/new", "2"), dir("o/sub/"), opaque("o"), file("o/later", "2"))
	want := map[string]bool{"a/gone": false, "a/kept": true, "rm": false, "o/lower": false, "o/sub": true,
		"o/sub/lower": false, "o/new": true, "o/later": true, "o/.wh..wh..opq": false}
	for p, w := range want {
		if got := exists(filepath.Join(dst, p)); got != w {
			t.Errorf("%s exists = %v, want %v", p, got, w)
		}
	}
}

func TestWhiteoutsOverlay(t *testing.T) {
	testenv.RequiresRoot(t)
	lower, upper := t.TempDir(), t.TempDir()
	mustApply(t, lower, NaiveWhiteouts, dir("a/"), file("a/gone", "1"), file("a/kept", "1"), dir("o/"), file("o/lower", "1"))
	mustApply(t, upper, OverlayWhiteouts, whiteout("a", "gone"), opaque("o"), file("o/new", "2"), whiteout("", "missing"))
	var st unix.Stat_t
	for _, p := range []string{"a/gone", "missing"} {
		if err := unix.Lstat(filepath.Join(upper, p), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s in upper is not a 0/0 char device: %v %o", p, err, st.Mode)
		}
	}
	if v, err := lgetxattr(filepath.Join(upper, "o"), "trusted.overlay.opaque"); err != nil || string(v) != "y" {
		t.Errorf("o opaque xattr = %q, %v", v, err)
	}
	// The kernel must read them as whiteouts.
	merged, work := t.TempDir(), t.TempDir()
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	want := map[string]bool{"a/gone": false, "a/kept": true, "o/lower": false, "o/new": true, "missing": false}
	for p, w := range want {
		if got := exists(filepath.Join(merged, p)); got != w {
			t.Errorf("merged %s exists = %v, want %v", p, got, w)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	testenv.RequiresRoot(t)
	suid := file("bin/su", "su")
	suid.mode = 0o4755
	x := file("etc/x", "x")
	x.xattrs = map[string]string{"user.k": "v", "security.capability": ""}
	delete(x.xattrs, "security.capability")
	owned := dir("home/u/")
	owned.uid, owned.gid = 1000, 1000
	layer := mktar(t, dir("bin/"), suid, file("bin/sh", "sh"), hardlink("bin/ash", "bin/sh"),
		symlink("bin/link", "sh"), dir("etc/"), x, owned, whiteout("etc", "old"), dir("opq/"), opaque("opq"),
		file("opq/f", "f"), ent{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
		file("long/"+string(bytes.Repeat([]byte("n"), 150)), "long name"))
	u1, u2 := t.TempDir(), t.TempDir()
	if _, err := Apply(context.Background(), u1, bytes.NewReader(layer), ApplyOptions{Whiteouts: OverlayWhiteouts}); err != nil {
		t.Fatal(err)
	}
	var d1, d2 bytes.Buffer
	if err := WriteDiff(context.Background(), &d1, u1); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(context.Background(), u2, bytes.NewReader(d1.Bytes()), ApplyOptions{Whiteouts: OverlayWhiteouts}); err != nil {
		t.Fatal(err)
	}
	if a, b := dumpNoWhiteoutTimes(t, u1), dumpNoWhiteoutTimes(t, u2); a != b {
		t.Errorf("Apply→WriteDiff→Apply changed the tree:\n%s\n---\n%s", a, b)
	}
	if err := WriteDiff(context.Background(), &d2, u2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d1.Bytes(), d2.Bytes()) {
		t.Errorf("WriteDiff not reproducible: %d vs %d bytes", d1.Len(), d2.Len())
	}
	// The diff names whiteouts the OCI way.
	names := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(d1.Bytes()))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names[hdr.Name] = true
		if !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() {
			t.Errorf("%s has atime/ctime", hdr.Name)
		}
	}
	for _, n := range []string{"etc/.wh.old", "opq/.wh..wh..opq", "bin/ash", "opq/"} {
		if !names[n] {
			t.Errorf("diff lacks %s; has %v", n, names)
		}
	}
}

// dumpNoWhiteoutTimes is dump without the mtimes of whiteout devices,
// which Apply creates rather than copies.
func dumpNoWhiteoutTimes(t *testing.T, root string) string {
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR {
			unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{{}, {}}, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
	return dump(t, root)
}

func TestApplyStream(t *testing.T) {
	// Truncated and garbage tars give a classified error, not a panic.
	data := mktar(t, file("a", "0123456789"))
	for _, in := range [][]byte{data[:515], []byte("not a tar at all, not at all, not at all")} {
		_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(in), ApplyOptions{})
		if err == nil {
			t.Errorf("Apply of %d bad bytes: no error", len(in))
		}
	}
	_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(data), ApplyOptions{Whiteouts: 9})
	if !errorsIs(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad whiteout mode: %v", err)
	}
}
