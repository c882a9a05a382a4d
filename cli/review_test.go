package cli

import (
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
