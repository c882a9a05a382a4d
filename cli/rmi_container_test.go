package cli

import (
	"strings"
	"testing"
)

// imageID is the full ID ("sha256:…") of an image argument.
func (h *host) imageID(ref string) string {
	h.t.Helper()
	return strings.TrimSpace(h.ok("image", "inspect", "--format", "{{.Id}}", ref))
}

// rmiFails runs rmi and expects docker's conflict on stderr, exit 1.
func (h *host) rmiFails(want string, args ...string) {
	h.t.Helper()
	out, errs, code := h.run("", append([]string{"rmi"}, args...)...)
	if code != 1 || out != "" || errs != "Error response from daemon: "+want+"\n" {
		h.t.Errorf("rmi %v: exit %d, out %q, err %q; want %q", args, code, out, errs, want)
	}
}

// untagOnly reports whether rmi printed the untagging of busybox:latest
// (and of its digest name) but deleted nothing.
func untagOnly(out string) bool {
	return strings.HasPrefix(out, "Untagged: busybox:latest\n") && !strings.Contains(out, "Deleted")
}

// An image a running container uses: its last name goes only with -f
// (and the image stays, dangling), its ID never.
func TestRmiImageOfRunningContainer(t *testing.T) {
	h := newHost(t)
	img := h.imageID("busybox")
	short := strings.TrimPrefix(img, "sha256:")[:12]
	id := strings.TrimSpace(h.ok("run", "-d", "--name", "web", "busybox", "sleep", "100"))

	h.rmiFails(`conflict: unable to remove repository reference "busybox" (must force) - container `+id[:12]+` is using its referenced image `+short, "busybox")
	h.rmiFails(`conflict: unable to remove repository reference "busybox:latest" (must force) - container `+id[:12]+` is using its referenced image `+short, "busybox:latest")
	want := "conflict: unable to delete " + short + " (cannot be forced) - image is being used by running container " + id[:12]
	h.rmiFails(want, short)
	h.rmiFails(want, "-f", img)

	// A second name in another repository can go: the image keeps one.
	h.ok("tag", "busybox", "other:1")
	if out := h.ok("rmi", "other:1"); out != "Untagged: other:1\n" {
		t.Errorf("rmi of a second name: %q", out)
	}
	// prune -a keeps what a container uses.
	h.ok("image", "prune", "-a", "-f")
	if out := h.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); out != "busybox:latest "+short+"\n" {
		t.Errorf("images after prune -a: %q", out)
	}
	// -f removes the name; the image stays, dangling, for the container.
	if out := h.ok("rmi", "-f", "busybox"); !untagOnly(out) {
		t.Errorf("rmi -f: %q", out)
	}
	if out := h.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); out != "<none>:<none> "+short+"\n" {
		t.Errorf("images after rmi -f: %q", out)
	}
	if st := h.state("web"); st["Running"] != true {
		t.Errorf("container after rmi -f: %v", st)
	}
	h.rmiFails(want, "-f", short)
}

// An image only stopped containers use: by ID it goes only with -f, which
// untags it and keeps it; prune and GC keep it and the container starts.
func TestRmiImageOfStoppedContainer(t *testing.T) {
	h := newHost(t)
	img := h.imageID("busybox")
	short := strings.TrimPrefix(img, "sha256:")[:12]
	id := strings.TrimSpace(h.ok("create", "--name", "idle", "busybox", "echo", "still here"))

	h.rmiFails(`conflict: unable to remove repository reference "busybox" (must force) - container `+id[:12]+` is using its referenced image `+short, "busybox")
	h.rmiFails("conflict: unable to delete "+short+" (must be forced) - image is being used by stopped container "+id[:12], short)
	if out := h.ok("rmi", "-f", short); !untagOnly(out) {
		t.Errorf("rmi -f ID: %q", out)
	}
	// Nothing is left to untag: the image itself cannot go.
	h.rmiFails("conflict: unable to delete "+short+" (cannot be forced) - image is being used by stopped container "+id[:12], "-f", short)

	// Neither prune (which collects garbage after) takes it.
	h.ok("image", "prune", "-f")
	h.ok("image", "prune", "-a", "-f")
	if out := h.ok("images", "-q"); out != short+"\n" {
		t.Errorf("images after prune: %q", out)
	}
	if out := h.ok("start", "-a", "idle"); out != "still here\n" {
		t.Errorf("start after rmi -f and prune: %q", out)
	}
	if out := h.ok("inspect", "--format", "{{.Image}} {{.Config.Image}}", "idle"); out != img+" busybox\n" {
		t.Errorf("inspect: %q", out)
	}
	// Without its container the image is an ordinary dangling one.
	h.ok("rm", "idle")
	out := h.ok("image", "prune", "-f")
	if !strings.Contains(out, "deleted: "+img) {
		t.Errorf("prune after rm: %q", out)
	}
	if out := h.ok("images", "-aq"); out != "" {
		t.Errorf("images left: %q", out)
	}
}

// The last name of an image that only a removed container used goes, and
// the image with it; a name a container never used is no conflict.
func TestRmiWithoutUsers(t *testing.T) {
	h := newHost(t)
	img := h.imageID("busybox")
	h.ok("tag", "busybox", "spare:1")
	h.ok("run", "--name", "gone", "spare:1", "true")
	h.ok("rm", "gone")
	if out := h.ok("rmi", "spare:1"); out != "Untagged: spare:1\n" {
		t.Errorf("rmi spare:1: %q", out)
	}
	out := h.ok("rmi", "busybox")
	if !strings.HasPrefix(out, "Untagged: busybox:latest\n") || !strings.Contains(out, "\nDeleted: "+img+"\n") {
		t.Errorf("rmi busybox: %q", out)
	}
}
