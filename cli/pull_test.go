package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
)

func berth(t *testing.T, root string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"--root", root, "--runroot", t.TempDir()}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestPullCommand(t *testing.T) {
	testenv.RequiresRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushImage(t, reg, "library/busybox:latest", testenv.BusyboxImage(t))
	root := t.TempDir()
	name := reg.Host + "/library/busybox"

	out, errs, code := berth(t, root, "pull", name)
	if code != 0 {
		t.Fatalf("pull: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"Using default tag: latest\n",
		"latest: Pulling from " + reg.Host + "/library/busybox\n",
		": Pull complete\n",
		"Digest: sha256:",
		"Status: Downloaded newer image for " + name + ":latest\n",
		name + ":latest\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = berth(t, root, "pull", name+":latest")
	if code != 0 || !strings.Contains(out, "Status: Image is up to date for "+name+":latest") || strings.Contains(out, "Using default tag") {
		t.Errorf("second pull: exit %d:\n%s", code, out)
	}
	out, _, code = berth(t, root, "image", "pull", "-q", name)
	if code != 0 || out != name+":latest\n" {
		t.Errorf("pull -q: exit %d: %q", code, out)
	}
	_, errs, code = berth(t, root, "pull", reg.Host+"/library/nosuch")
	if code != 1 || !strings.HasPrefix(errs, "Error response from daemon: ") {
		t.Errorf("pull of a missing image: exit %d, stderr %q", code, errs)
	}
	_, errs, code = berth(t, root, "pull", "UPPERCASE")
	if code != 1 || !strings.Contains(errs, "invalid reference format") {
		t.Errorf("pull of a bad name: exit %d, stderr %q", code, errs)
	}
}
