package cli

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/mount"
)

// rootfsTar writes the busybox rootfs as a tarball compressed with c.
func rootfsTar(t *testing.T, c testenv.Compression) string {
	t.Helper()
	rc, err := testenv.Layer(t, c, testenv.BusyboxRootfs(t)...).Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(p, data, 0o644)
	return p
}

func TestImportCommand(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	file := rootfsTar(t, testenv.Gzip)
	out, errs, code := berth(t, root, "import",
		"-c", `CMD ["sh"]`, "-c", `ENV A=1 B="two words"`, "-c", "EXPOSE 80", "-c", "WORKDIR /tmp",
		"-c", "LABEL x=y", "-m", "hello", file, "imported:1")
	if code != 0 || !strings.HasPrefix(out, "sha256:") || len(out) != len("sha256:")+64+1 {
		t.Fatalf("import: exit %d: %q %s", code, out, errs)
	}
	g := &globals{root: root, runRoot: t.TempDir(), driver: "overlay"}
	e, err := g.engine()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.FindImage(t.Context(), "imported:1")
	if err != nil || rec.Config.String() != strings.TrimSpace(out) {
		t.Fatalf("find imported:1: %v, %s", err, rec.Config)
	}
	img, err := e.ResolveImage(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	c := img.ConfigFile.Config
	if !reflect.DeepEqual(c.Cmd, []string{"sh"}) || !reflect.DeepEqual(c.Env, []string{"A=1", "B=two words"}) ||
		c.WorkingDir != "/tmp" || c.Labels["x"] != "y" || len(c.ExposedPorts) != 1 {
		t.Errorf("config = %+v", c)
	}
	if h := img.ConfigFile.History; len(h) != 1 || h[0].Comment != "hello" {
		t.Errorf("history = %+v", h)
	}
	mounts, err := e.ViewImage(t.Context(), "view-import", img)
	if err != nil {
		t.Fatal(err)
	}
	if err := mount.WithTempMount(t.Context(), mounts, func(dir string) error {
		_, err := os.Lstat(filepath.Join(dir, "bin/sh"))
		return err
	}); err != nil {
		t.Errorf("imported rootfs lacks /bin/sh: %v", err)
	}
	e.RemoveView(t.Context(), "view-import")
	e.Close() // the snapshot database is one process's at a time

	// zstd, no name: a dangling image found by its ID; shell-form CMD.
	out, errs, code = berth(t, root, "import", "-c", "CMD echo hi", rootfsTar(t, testenv.Zstd))
	if code != 0 {
		t.Fatalf("import zstd: %s", errs)
	}
	if id := strings.TrimSpace(out); imageID(t, root, id[7:19]) != id {
		t.Errorf("unnamed import not found by its ID %s", id)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "-c", "ADD a b", file}, "ADD is not a valid change command"},
		{[]string{"import", "http://127.0.0.1:1/x.tar"}, "importing from a URL is not supported"},
		{[]string{"import", filepath.Join(t.TempDir(), "nosuch")}, "no such file"},
		{[]string{"import", file, "BAD:name"}, "invalid reference format"},
	} {
		if _, errs, code := berth(t, root, c.args...); code != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errs, c.want)
		}
	}
}
