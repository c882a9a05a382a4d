package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTmpfsOverImageVolume: --tmpfs at a path the image declares a
// VOLUME for wins, as in Docker (it used to add a volume there too, and
// the container could not start).
func TestTmpfsOverImageVolume(t *testing.T) {
	h := newHost(t)
	h.ok("run", "--name", "withvol", "-v", "/data", "busybox", "true")
	h.ok("commit", "--change", "VOLUME /data", "withvol", "volimage")
	out := h.ok("run", "--rm", "--tmpfs", "/data", "volimage", "sh", "-c", "grep ' /data ' /proc/mounts | cut -d' ' -f3")
	if strings.TrimSpace(out) != "tmpfs" {
		t.Fatalf("/data is %q, want tmpfs", out)
	}
}

// TestRestartRmContainer: restart does not remove an --rm container.
func TestRestartRmContainer(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--rm", "--name", "rmrestart", "busybox", "sleep", "100")
	h.ok("restart", "-t", "0", "rmrestart")
	time.Sleep(300 * time.Millisecond) // an exit command would have run by now
	if st := h.state("rmrestart"); st["Running"] != true {
		t.Fatalf("after restart: %v", st)
	}
	h.ok("stop", "-t", "0", "rmrestart")
	waitFor(t, func() bool { _, _, code := h.run("", "inspect", "rmrestart"); return code != 0 })
}

// TestStopStart: a start right after stop does not run into the old
// shim's clean-up.
func TestStopStart(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "stopstart", "busybox", "sleep", "100")
	for i := 0; i < 5; i++ {
		h.ok("stop", "-t", "0", "stopstart")
		h.ok("start", "stopstart")
		if out := h.ok("exec", "stopstart", "echo", "up"); out != "up\n" {
			t.Fatalf("round %d: exec printed %q", i, out)
		}
	}
}

// TestRemovalInProgress: a container whose rm was cut short shows as
// Docker shows it (ps "Removal In Progress", State.Status "removing"),
// cannot start, and the next rm finishes it.
func TestRemovalInProgress(t *testing.T) {
	h := newHost(t)
	id := strings.TrimSpace(h.ok("create", "--name", "half", "busybox", "true"))
	// What RemoveContainer leaves first, before it deletes anything.
	if err := os.WriteFile(filepath.Join(h.root, "containers", id, "removing"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := h.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}"); strings.TrimSpace(out) != "half Removal In Progress" {
		t.Fatalf("ps: %q", out)
	}
	if st := h.state("half"); st["Status"] != "removing" {
		t.Fatalf("State.Status %v", st["Status"])
	}
	if _, errs, code := h.run("", "start", "half"); code == 0 || !strings.Contains(errs, "marked for removal") {
		t.Fatalf("start: exit %d: %s", code, errs)
	}
	h.ok("rm", "half")
	if _, _, code := h.run("", "inspect", "half"); code == 0 {
		t.Fatal("the container is still there after rm")
	}
}

// TestExecDetachedTerminal: `exec -d -t` runs its command to the end on a
// terminal, as with Docker, whose daemon holds the terminal: berth hands
// the terminal's master to a holder that drains it and goes with the
// process (the command used to be hung up as `exec` returned).
func TestExecDetachedTerminal(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "dt", "busybox", "sleep", "1000")
	h.ok("exec", "-d", "-t", "dt", "sh", "-c", "sleep 1; [ -t 1 ] && echo on a tty > /marker")
	waitFor(t, func() bool {
		out, _, code := h.run("", "exec", "dt", "cat", "/marker")
		return code == 0 && out == "on a tty\n"
	})
	holder := func() bool {
		return slices.ContainsFunc(procs(), func(p proc) bool { return p.has("--hold-terminal") })
	}
	waitFor(t, func() bool { return !holder() }) // gone with its process
}
