package cli

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pidOne returns the command line of PID 1 in `ps -o pid,args` output.
func pidOne(ps string) string {
	for _, l := range strings.Split(ps, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "1" {
			return strings.Join(f[1:], " ")
		}
	}
	return ""
}

func TestRunInit(t *testing.T) {
	h := newHost(t)
	// docker-init is PID 1 and runs the command after "--".
	if got := pidOne(h.ok("run", "--rm", "--init", "busybox", "ps", "-o", "pid,args")); got != "/sbin/docker-init -- ps -o pid,args" {
		t.Errorf("PID 1 with --init: %q", got)
	}
	if got := pidOne(h.ok("run", "--rm", "busybox", "ps", "-o", "pid,args")); got != "ps -o pid,args" {
		t.Errorf("PID 1 without --init: %q", got)
	}
	// The init is read-only: nobody in the container replaces it.
	if _, errs, code := h.run("", "run", "--rm", "--init", "busybox", "sh", "-c", "echo x > /sbin/docker-init"); code == 0 || !strings.Contains(errs, "Read-only") {
		t.Errorf("write to the init: exit %d, %q", code, errs)
	}
	// The command's exit status and messages come through it.
	if _, _, code := h.run("", "run", "--rm", "--init", "busybox", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("exit 5 through the init: %d", code)
	}
	if _, errs, code := h.run("", "run", "--rm", "--init", "busybox", "nosuchcommand"); code != 127 || !strings.Contains(errs, "nosuchcommand") {
		t.Errorf("missing command through the init: %d %q", code, errs)
	}
}

// An orphan left by the command is reaped by the init. Without it the
// command (a sleep that never waits) is PID 1 and the orphan stays a
// zombie: the control that shows the test can tell.
func TestInitReapsZombies(t *testing.T) {
	h := newHost(t)
	zombies := func(init string) string {
		h.ok("run", "-d", init, "--name", "zz", "busybox", "sh", "-c", "sh -c 'sleep 0.2 &'; exec sleep 100")
		defer h.ok("rm", "-f", "zz")
		var ps string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			ps = h.ok("exec", "zz", "ps", "-o", "pid,stat,args")
			// Wait until the orphan has exited: only PID 1, the sleep and ps
			// (or the zombie) are left.
			if !strings.Contains(ps, "sleep 0.2") {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
		ps = h.ok("exec", "zz", "ps", "-o", "pid,stat,args")
		var z []string
		for _, l := range strings.Split(ps, "\n") {
			if f := strings.Fields(l); len(f) > 2 && strings.HasPrefix(f[1], "Z") {
				z = append(z, l)
			}
		}
		return strings.Join(z, "\n")
	}
	if z := zombies("--init"); z != "" {
		t.Errorf("zombies with --init:\n%s", z)
	}
	if z := zombies("--init=false"); z == "" {
		t.Errorf("no zombie without an init: the test cannot tell")
	}
}

// The init passes `stop`'s SIGTERM on: a sleep (which, as PID 1, would
// ignore it) dies at once, of the signal, with no SIGKILL after the wait.
func TestInitForwardsStop(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--init", "--name", "sl", "busybox", "sleep", "100")
	start := time.Now()
	h.ok("stop", "-t", "30", "sl")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop took %v: the signal was not forwarded", d)
	}
	if st := h.state("sl"); st["ExitCode"] != 143.0 || st["Status"] != "exited" {
		t.Errorf("after stop: %v", st)
	}
	// A signal of the user's own reaches the command too.
	h.ok("start", "sl")
	h.ok("kill", "-s", "USR1", "sl")
	if out := h.ok("wait", "sl"); out != "138\n" {
		t.Errorf("wait after SIGUSR1: %q", out)
	}
}

// A berth that is not static cannot be the init: it says so.
func TestRunInitDynamicBerth(t *testing.T) {
	h := newHost(t)
	dyn := filepath.Join(t.TempDir(), "berth")
	if out, err := exec.Command("go", "build", "-o", dyn, "../cmd/berth").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(dyn, "--root", h.root, "--runroot", h.runRoot, "run", "--rm", "--init", "busybox", "true")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is dynamically linked") {
		t.Fatalf("run --init with a dynamic berth: %v: %s", err, out)
	}
}
