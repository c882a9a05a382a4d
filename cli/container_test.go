package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// berthBin builds the berth binary once for the tests that run it as a
// user does: containers outlive the command, so they need the real
// program (as their shim) and real exit statuses.
func berthBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-cli-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath, binErr = testenv.BerthBinary(dir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// host is one test's berth state with the busybox image imported.
type host struct {
	t             *testing.T
	root, runRoot string
}

func newHost(t *testing.T) *host {
	t.Helper()
	testenv.RequiresRoot(t)
	testenv.RequiresBusybox(t)
	h := &host{t: t, root: t.TempDir(), runRoot: t.TempDir()}
	if _, errs, code := h.run("", "import", rootfsTar(t, testenv.Gzip), "busybox"); code != 0 {
		t.Fatalf("import: %s", errs)
	}
	t.Cleanup(func() {
		out, _, _ := h.run("", "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			h.run("", "rm", "-f", id)
		}
		// The exit commands of --rm containers and their shims write under
		// the roots until they end; the temp dirs go only after them.
		h.settle()
		if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(h.runRoot)) || bytes.Contains(b, []byte(h.root+"/")) {
			t.Errorf("mounts left under the test's roots:\n%s", grepLines(string(b), h.root, h.runRoot))
		}
	})
	return h
}

func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// run runs berth with stdin and returns stdout, stderr and the status.
func (h *host) run(stdin string, args ...string) (string, string, int) {
	h.t.Helper()
	cmd := exec.Command(berthBin(h.t), append([]string{"--root", h.root, "--runroot", h.runRoot}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// ok runs berth and fails the test unless it succeeds; it returns stdout.
func (h *host) ok(args ...string) string {
	h.t.Helper()
	out, errs, code := h.run("", args...)
	if code != 0 {
		h.t.Fatalf("berth %s: exit %d: %s%s", strings.Join(args, " "), code, errs, out)
	}
	return out
}

// inspect returns a container's inspect object.
func (h *host) inspect(ref string) map[string]any {
	h.t.Helper()
	var v []map[string]any
	if err := json.Unmarshal([]byte(h.ok("inspect", ref)), &v); err != nil || len(v) != 1 {
		h.t.Fatalf("inspect %s: %v", ref, err)
	}
	return v[0]
}

func (h *host) state(ref string) map[string]any {
	return h.inspect(ref)["State"].(map[string]any)
}

func TestRunForeground(t *testing.T) {
	h := newHost(t)
	if out := h.ok("run", "--rm", "busybox", "echo", "hello"); out != "hello\n" {
		t.Fatalf("run echo: %q", out)
	}
	if out := h.ok("ps", "-aq"); out != "" {
		t.Fatalf("--rm left %q", out)
	}
	out, errs, code := h.run("", "run", "--name", "three", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || out != "out\n" || errs != "err\n" {
		t.Fatalf("exit 3: code %d out %q err %q", code, out, errs)
	}
	st := h.state("three")
	if st["Status"] != "exited" || st["ExitCode"] != 3.0 || st["Running"] != false {
		t.Fatalf("state %v", st)
	}
	if ps := h.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(ps, "three Exited (3) ") {
		t.Fatalf("ps: %q", ps)
	}
	if logs := h.ok("logs", "three"); logs != "out\n" {
		t.Fatalf("logs stdout: %q", logs)
	}
}

func TestRunStdin(t *testing.T) {
	h := newHost(t)
	out, errs, code := h.run("one\ntwo\n", "run", "--rm", "-i", "busybox", "cat")
	if code != 0 || out != "one\ntwo\n" {
		t.Fatalf("run -i cat: %d %q %q", code, out, errs)
	}
}

func TestRunExitCodes(t *testing.T) {
	h := newHost(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", "--rm", "busybox", "nosuchcommand"}, 127, "executable file not found"},
		{[]string{"run", "--rm", "busybox", "/etc/passwd"}, 126, "permission denied"},
		{[]string{"run", "--memory", "abc", "busybox", "true"}, 125, `invalid argument "abc" for "-m, --memory" flag`},
		{[]string{"run", "--pull", "never", "nosuchimage"}, 125, "No such image"},
		{[]string{"run", "--bogus", "busybox"}, 125, "unknown flag: --bogus"},
	} {
		_, errs, code := h.run("", tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", tc.args, code, tc.code, errs, tc.msg)
		}
	}
	if out := h.ok("ps", "-aq"); out != "" {
		t.Fatalf("failed runs left containers: %q", out)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	h := newHost(t)
	id := strings.TrimSpace(h.ok("run", "-d", "--name", "web", "busybox", "sh", "-c",
		`echo started; trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done`))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	waitFor(t, func() bool { return strings.Contains(h.ok("logs", "web"), "started") })
	if ps := h.ok("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"); !strings.HasPrefix(ps, id[:12]+" web Up ") {
		t.Fatalf("ps: %q", ps)
	}
	if st := h.state("web"); st["Running"] != true || st["Pid"].(float64) <= 0 {
		t.Fatalf("state %v", st)
	}
	_, errs, code := h.run("", "rm", "web")
	if code == 0 || !strings.Contains(errs, "container is running") {
		t.Fatalf("rm of running: %d %q", code, errs)
	}
	if out := h.ok("stop", "web"); out != "web\n" {
		t.Fatalf("stop printed %q", out)
	}
	if st := h.state("web"); st["Status"] != "exited" || st["ExitCode"] != 0.0 {
		t.Fatalf("after stop: %v", st)
	}
	if logs := h.ok("logs", "web"); logs != "started\nbye\n" {
		t.Fatalf("logs: %q", logs)
	}
	h.ok("start", "web")
	if st := h.state("web"); st["Running"] != true {
		t.Fatalf("after start: %v", st)
	}
	h.ok("kill", "web")
	if out := h.ok("wait", "web"); out != "137\n" {
		t.Fatalf("wait after kill: %q", out)
	}
	h.ok("rm", "web")
	if out := h.ok("ps", "-aq"); out != "" {
		t.Fatalf("rm left %q", out)
	}
}

func TestExec(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "ctr", "-e", "FROM_RUN=1", "busybox", "sleep", "100")
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"exec", "ctr", "echo", "hi"}, "hi\n", 0},
		{[]string{"exec", "ctr", "sh", "-c", "exit 5"}, "", 5},
		{[]string{"exec", "-e", "A=b", "ctr", "sh", "-c", "echo $A $FROM_RUN"}, "b 1\n", 0},
		{[]string{"exec", "-u", "1000:1000", "ctr", "id", "-u"}, "1000\n", 0},
		{[]string{"exec", "-w", "/tmp", "ctr", "pwd"}, "/tmp\n", 0},
		{[]string{"exec", "ctr", "nosuch"}, "", 127},
	} {
		out, errs, code := h.run("", tc.args...)
		if code != tc.code || out != tc.want {
			t.Errorf("%v: exit %d out %q err %q; want %d %q", tc.args, code, out, errs, tc.code, tc.want)
		}
	}
	if out, _, code := h.run("in\n", "exec", "-i", "ctr", "cat"); code != 0 || out != "in\n" {
		t.Errorf("exec -i cat: %d %q", code, out)
	}
}

func TestNameConflict(t *testing.T) {
	h := newHost(t)
	id := strings.TrimSpace(h.ok("create", "--name", "xx", "busybox", "true"))
	_, errs, code := h.run("", "create", "--name", "xx", "busybox", "true")
	if code != 1 || !strings.Contains(errs, `The container name "/xx" is already in use by container "`+id+`"`) {
		t.Fatalf("second create: %d %q", code, errs)
	}
	if n := len(strings.Fields(h.ok("ps", "-aq"))); n != 1 {
		t.Fatalf("%d containers after a conflict", n)
	}
	if st := h.state("xx"); st["Status"] != "created" {
		t.Fatalf("created state: %v", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 10s")
}
