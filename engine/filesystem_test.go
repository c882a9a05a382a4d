package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// testView builds a rootfs and a volume in temp directories:
//
//	/etc/passwd          file
//	/abs -> /etc         absolute link
//	/rel -> ../../etc    relative link that climbs past "/"
//	/loop -> /loop       a loop
//	/data                mount point of the volume
//	(volume) /inner -> /etc   a link inside the volume, back to the rootfs
//	/tolink -> /data/inner
func testView(t *testing.T) (*fsView, string, string) {
	t.Helper()
	root, vol := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root\n"), 0o644))
	must(os.Symlink("/etc", filepath.Join(root, "abs")))
	must(os.Symlink("../../etc", filepath.Join(root, "rel")))
	must(os.Symlink("/loop", filepath.Join(root, "loop")))
	must(os.Mkdir(filepath.Join(root, "data"), 0o755))
	must(os.Symlink("/etc", filepath.Join(vol, "inner")))
	must(os.WriteFile(filepath.Join(vol, "v"), []byte("vol\n"), 0o644))
	must(os.Symlink("/data/inner", filepath.Join(root, "tolink")))
	v, err := newView(root, []viewMount{{dest: "/data", source: vol, rw: true, user: true}})
	must(err)
	t.Cleanup(v.close)
	return v, root, vol
}

func TestViewResolve(t *testing.T) {
	v, _, _ := testView(t)
	for _, tc := range []struct {
		in          string
		followFinal bool
		want        string
		err         error
	}{
		{"/etc/passwd", false, "/etc/passwd", nil},
		{"etc/../etc/./passwd", false, "/etc/passwd", nil},
		{"/abs/passwd", false, "/etc/passwd", nil},
		{"/abs", false, "/abs", nil},
		{"/abs", true, "/etc", nil},
		{"/rel/passwd", false, "/etc/passwd", nil},
		{"/../../../etc/passwd", false, "/etc/passwd", nil},
		{"/data/inner/passwd", false, "/etc/passwd", nil},
		{"/tolink/passwd", false, "/etc/passwd", nil},
		{"/data/v", true, "/data/v", nil},
		{"/etc/missing", true, "/etc/missing", nil},
		{"/missing/x", false, "", unix.ENOENT},
		{"/etc/passwd/x", false, "", unix.ENOTDIR},
		{"/loop/x", false, "", unix.ELOOP},
	} {
		got, err := v.resolve(tc.in, tc.followFinal)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("resolve(%q, %v) = %q, %v; want %q, %v", tc.in, tc.followFinal, got, err, tc.want, tc.err)
		}
	}
}

func TestViewLocate(t *testing.T) {
	v, _, vol := testView(t)
	for _, tc := range []struct {
		in, rel string
		mount   bool
	}{
		{"/", ".", false}, {"/etc/passwd", "etc/passwd", false}, {"/data", ".", true},
		{"/data/v", "v", true}, {"/database", "database", false},
	} {
		m, rel := v.locate(tc.in)
		if rel != tc.rel || (m != nil) != tc.mount || (m != nil && m.source != vol) {
			t.Errorf("locate(%q) = %v, %q", tc.in, m, rel)
		}
	}
}

// TestViewOpenRace: a directory the container swaps for a link after
// resolve saw it cannot lead open outside the root.
func TestViewOpenRace(t *testing.T) {
	v, root, _ := testView(t)
	p, err := v.resolve("/etc/passwd", false)
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "passwd"), []byte("host\n"), 0o644)
	os.RemoveAll(filepath.Join(root, "etc"))
	os.Symlink(outside, filepath.Join(root, "etc"))
	fd, err := v.open(p, unix.O_RDONLY)
	if err == nil {
		unix.Close(fd)
		t.Fatal("open followed a link swapped in after resolve")
	}
	if !errors.Is(err, unix.ELOOP) {
		t.Fatalf("open: %v, want ELOOP", err)
	}
}

func TestTreeWriterAndExtract(t *testing.T) {
	v, root, vol := testView(t)
	os.Link(filepath.Join(root, "etc/passwd"), filepath.Join(root, "etc/hard"))
	var buf bytes.Buffer
	tw := newTreeWriter(&buf, v, true)
	if err := tw.writePath(context.Background(), "/", "."); err != nil {
		t.Fatal(err)
	}
	tw.close()
	got := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[hdr.Name] = hdr
	}
	for name, typ := range map[string]byte{
		"./": tar.TypeDir, "./etc/hard": tar.TypeReg, "./etc/passwd": tar.TypeLink, "./abs": tar.TypeSymlink,
		"./data/": tar.TypeDir, "./data/v": tar.TypeReg, "./data/inner": tar.TypeSymlink,
	} {
		if h := got[name]; h == nil || h.Typeflag != typ {
			t.Errorf("entry %s: %v", name, h)
		}
	}
	// Names in order: hard comes first, and passwd links to it.
	if h := got["./etc/passwd"]; h != nil && h.Linkname != "./etc/hard" {
		t.Errorf("hardlink to %q", h.Linkname)
	}
	// Back into the view: entries under /data go to the volume.
	var in bytes.Buffer
	w := tar.NewWriter(&in)
	w.WriteHeader(&tar.Header{Name: "data/new", Typeflag: tar.TypeReg, Mode: 0o600, Size: 2})
	w.Write([]byte("n\n"))
	w.WriteHeader(&tar.Header{Name: "top", Typeflag: tar.TypeReg, Mode: 0o600, Size: 2})
	w.Write([]byte("t\n"))
	w.Close()
	if err := v.extract(context.Background(), "/", &in, extractOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(vol, "new")); err != nil || string(b) != "n\n" {
		t.Fatalf("volume file: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "top")); err != nil || string(b) != "t\n" {
		t.Fatalf("rootfs file: %q %v", b, err)
	}
	// A read-only rootfs takes the volume's entry only.
	in.Reset()
	w = tar.NewWriter(&in)
	w.WriteHeader(&tar.Header{Name: "top2", Typeflag: tar.TypeReg, Mode: 0o600})
	w.Close()
	err := v.extract(context.Background(), "/", &in, extractOptions{readonlyRootfs: true})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("read-only rootfs: %v", err)
	}
}

func TestDiffPath(t *testing.T) {
	for in, want := range map[string]string{
		"etc/":               "/etc",
		"etc/passwd":         "/etc/passwd",
		"etc/.wh.group":      "/etc/group",
		"etc/.wh..wh..opq":   "/etc",
		".wh.top":            "/top",
		"a/b/.wh..wh..opq":   "/a/b",
		"a/b/.wh.c.d":        "/a/b/c.d",
		"usr/lib/libx.so.1/": "/usr/lib/libx.so.1",
	} {
		if got := diffPath(in); got != want {
			t.Errorf("diffPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAbsPath: docker's PreserveTrailingDotOrSeparator(Join("/", p), p).
func TestAbsPath(t *testing.T) {
	for in, want := range map[string]string{
		"etc": "/etc", "/etc/": "/etc/", "/etc/.": "/etc/.", "etc/./": "/etc/./", "/": "/", ".": "/.", "a/../b/.": "/b/.",
	} {
		if got := absPath(in); got != want {
			t.Errorf("absPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpandVars(t *testing.T) {
	env := []string{"PATH=/bin", "A=1", "E="}
	for in, want := range map[string]string{
		"PATH=$PATH:/x":         "PATH=/bin:/x",
		"B=${A}2 C=$A$A":        "B=12 C=11",
		`D='$A' F="$A"`:         `D='$A' F="1"`,
		`G=\$A`:                 `G=\$A`,
		"H=${E:-def} I=${A:+y}": "H=def I=y",
		"J=$NOPE K=${NOPE}":     "J= K=",
		"cost $5":               "cost $5",
	} {
		if got := expandVars(in, env); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommitChange(t *testing.T) {
	var cfg dockerspec.DockerOCIImageConfig
	cfg.Env = []string{"PATH=/bin"}
	cfg.Cmd = []string{"sh"}
	cmdSet := false
	for _, c := range []string{
		"ENV PATH=$PATH:/opt/bin", "WORKDIR /a", "WORKDIR b", "ONBUILD run echo hi",
		"HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost", `ENTRYPOINT ["/bin/app"]`,
	} {
		if err := commitChange(&cfg, c, &cmdSet); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	if cfg.Env[0] != "PATH=/bin:/opt/bin" || cfg.WorkingDir != "/a/b" || cfg.OnBuild[0] != "RUN echo hi" || cfg.Cmd != nil {
		t.Fatalf("config: %+v", cfg)
	}
	if h := cfg.Healthcheck; h == nil || h.Interval != 5*time.Second || h.Retries != 2 || h.Test[0] != "CMD-SHELL" {
		t.Fatalf("healthcheck: %+v", h)
	}
	for _, bad := range []string{"FROM x", "ONBUILD FROM x", "HEALTHCHECK --bogus=1 CMD x", "HEALTHCHECK RUN x"} {
		if err := commitChange(&cfg, bad, &cmdSet); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
