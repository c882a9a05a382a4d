package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// inTerminal runs a shell command line under script(1), so that berth
// gets a terminal of 33 rows and 99 columns, and returns its output.
func (h *host) inTerminal(line string) string {
	h.t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		h.t.Skip("script(1) is not installed")
	}
	b := berthBin(h.t) + " --root " + h.root + " --runroot " + h.runRoot
	out, err := exec.Command("script", "-qec", "stty rows 33 cols 99; "+strings.ReplaceAll(line, "berth ", b+" "), "/dev/null").CombinedOutput()
	if err != nil {
		h.t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

// TestTerminalSize: run -t and exec -t start with berth's terminal size;
// exec -i from a terminal gives the process a pipe, never the terminal.
func TestTerminalSize(t *testing.T) {
	h := newHost(t)
	if out := h.inTerminal("berth run --rm -t busybox stty size"); !strings.Contains(out, "33 99") {
		t.Errorf("run -t: stty size printed %q", out)
	}
	h.ok("run", "-d", "--name", "term", "busybox", "sleep", "100")
	if out := h.inTerminal("berth exec -t term stty size"); !strings.Contains(out, "33 99") {
		t.Errorf("exec -t: stty size printed %q", out)
	}
	if out := h.inTerminal("berth exec -i term tty </dev/tty || true"); !strings.Contains(out, "not a tty") {
		t.Errorf("exec -i from a terminal: tty printed %q", out)
	}
}
