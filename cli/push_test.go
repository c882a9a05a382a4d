package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
)

// imageID returns the config digest berth records for name, via the engine.
func imageID(t *testing.T, root, name string) string {
	t.Helper()
	g := &globals{root: root, runRoot: t.TempDir(), driver: "overlay"}
	e, err := g.engine()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rec, err := e.FindImage(t.Context(), name)
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	return rec.Config.String()
}

// tag records target as a second name of the image source names, as
// docker tag would, straight in the metadata database.
func tag(t *testing.T, root, source, target string) {
	t.Helper()
	db, err := meta.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := db.GetImage(t.Context(), ref.MustParse(source).String())
	if err != nil {
		t.Fatal(err)
	}
	rec.Name = ref.MustParse(target).String()
	if err := db.PutImage(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
}

func TestPushCommand(t *testing.T) {
	testenv.RequiresRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushImage(t, reg, "library/multi:1", testenv.MultiLayerImage(t))
	root := t.TempDir()
	src := reg.Host + "/library/multi:1"
	if _, errs, code := berth(t, root, "pull", "-q", src); code != 0 {
		t.Fatalf("pull: %s", errs)
	}
	// A second name on the same registry: push mounts from library/multi.
	copyName := reg.Host + "/berth/copy:2"
	tag(t, root, src, copyName)

	out, errs, code := berth(t, root, "push", copyName)
	if code != 0 {
		t.Fatalf("push: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"The push refers to repository [" + reg.Host + "/berth/copy]\n",
		": Preparing\n",
		": Mounted from library/multi\n",
		"2: digest: sha256:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, ": Pushed\n") {
		t.Errorf("push uploaded layers the registry could mount:\n%s", out)
	}
	out, _, code = berth(t, root, "push", copyName)
	if code != 0 || !strings.Contains(out, ": Layer already exists\n") {
		t.Errorf("second push: exit %d:\n%s", code, out)
	}
	out, _, code = berth(t, root, "push", "-q", copyName)
	if code != 0 || out != copyName+"\n" {
		t.Errorf("push -q: exit %d: %q", code, out)
	}
	_, errs, code = berth(t, root, "push", reg.Host+"/nosuch:1")
	if code != 1 || !strings.Contains(errs, "An image does not exist locally with the tag: "+reg.Host+"/nosuch") {
		t.Errorf("push of a missing image: exit %d: %s", code, errs)
	}

	// Pull back into a fresh root: same image ID.
	fresh := t.TempDir()
	if _, errs, code := berth(t, fresh, "pull", "-q", copyName); code != 0 {
		t.Fatalf("pull back: %s", errs)
	}
	if a, b := imageID(t, root, copyName), imageID(t, fresh, copyName); a != b {
		t.Errorf("pulled back image ID %s, pushed %s", b, a)
	}

	// skopeo sees what berth pushed.
	if _, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+copyName).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"Layers"`) {
			t.Errorf("skopeo inspect: %v\n%s", err, out)
		}
	}
}

func TestPushUploads(t *testing.T) {
	testenv.RequiresRoot(t)
	src := testenv.StartRegistry(t, testenv.RegistryOptions{})
	dst := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushImage(t, src, "library/busybox:latest", testenv.BusyboxImage(t))
	// skopeo copies from the fixture into a second registry; berth pulls it.
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	cmd := exec.Command("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+src.Host+"/library/busybox:latest", "docker://"+dst.Host+"/sk/busybox:1")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	root := t.TempDir()
	if _, errs, code := berth(t, root, "pull", "-q", dst.Host+"/sk/busybox:1"); code != 0 {
		t.Fatalf("pull of skopeo's copy: %s", errs)
	}
	// Push across registries: no mount possible, every layer uploaded.
	tag(t, root, dst.Host+"/sk/busybox:1", src.Host+"/up/busybox:1")
	out, errs, code := berth(t, root, "push", src.Host+"/up/busybox:1")
	if code != 0 || !strings.Contains(out, ": Pushed\n") {
		t.Fatalf("push: exit %d: %s\n%s", code, errs, out)
	}
	fresh := t.TempDir()
	if _, errs, code := berth(t, fresh, "pull", "-q", src.Host+"/up/busybox:1"); code != 0 {
		t.Fatalf("pull back: %s", errs)
	}
	if a, b := imageID(t, root, src.Host+"/up/busybox:1"), imageID(t, fresh, src.Host+"/up/busybox:1"); a != b {
		t.Errorf("pulled back image ID %s, pushed %s", b, a)
	}
}
