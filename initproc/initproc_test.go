package initproc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// initCmd runs the test binary under the name docker-init: it links this
// package, so its constructor makes it the init, as with berth.
func initCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Args[0] = "docker-init"
	return cmd
}

// status runs the init with args and returns its exit status and stderr.
func status(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := initCmd(t, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("init %v did not exit", args)
	}
	return cmd.ProcessState.ExitCode(), errb.String()
}

func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--", "sh", "-c", "exit 3"}, 3, ""},
		{[]string{"sh", "-c", "exit 0"}, 0, ""},
		{[]string{"-s", "-g", "--", "true"}, 0, ""},
		{[]string{"--", "sh", "-c", "kill -KILL $$"}, 137, ""},
		{[]string{"--", "sh", "-c", "kill -TERM $$"}, 143, ""},
		{[]string{"--", "nosuchcommand-berth"}, 127, "exec nosuchcommand-berth failed"},
		{[]string{"--", filepath.Join(dir, "absent")}, 127, "failed"},
		{[]string{"--", plain}, 126, "failed"},
		{[]string{"--"}, 1, "no command given"},
		{[]string{}, 1, "no command given"},
		{[]string{"-x", "true"}, 1, `unknown option "-x"`},
	} {
		code, errs := status(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
}

func TestPassesArgsAndEnv(t *testing.T) {
	cmd := initCmd(t, "--", "sh", "-c", `printf '%s|%s|%s' "$1" "$2" "$INITPROC_X"`, "sh", "a b", "-v")
	cmd.Env = append(cmd.Env, "INITPROC_X=y")
	out, err := cmd.Output()
	if err != nil || string(out) != "a b|-v|y" {
		t.Fatalf("output %q, %v", out, err)
	}
}

// A signal to the init reaches the command and the rest of its process
// group: the trap runs, and with SIGTERM the background sleep dies too.
func TestForwardsSignals(t *testing.T) {
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1, unix.SIGWINCH} {
		dir := t.TempDir()
		ready := filepath.Join(dir, "ready")
		script := `trap 'echo got; exit 7' ` + strings.TrimPrefix(unix.SignalName(sig), "SIG") +
			`; sleep 30 >/dev/null & echo $! >` + ready + `.tmp; mv ` + ready + `.tmp ` + ready + `; wait`
		cmd := initCmd(t, "--", "sh", "-c", script)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sleeper := readPid(t, ready)
		start := time.Now()
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			unix.Kill(sleeper, unix.SIGKILL)
			t.Fatalf("%v was not forwarded", sig)
		}
		if code := cmd.ProcessState.ExitCode(); code != 7 || out.String() != "got\n" {
			t.Errorf("%v: exit %d, output %q", sig, code, out.String())
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%v: took %v", sig, d)
		}
		if sig == unix.SIGTERM {
			// The sleep got it too (a shell's background job ignores
			// only SIGINT and SIGQUIT).
			deadline := time.Now().Add(5 * time.Second)
			for alive(sleeper) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if alive(sleeper) {
				t.Errorf("SIGTERM did not reach the command's process group")
			}
		}
		unix.Kill(sleeper, unix.SIGKILL)
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// readPid waits for path and reads the pid in it.
func readPid(t *testing.T, path string) int {
	t.Helper()
	waitFile(t, path)
	b, _ := os.ReadFile(path)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid in %s: %q", path, b)
	}
	return pid
}

// An orphan that the command leaves is reparented to the init (a
// subreaper here, PID 1 in a container), which reaps it: no zombie stays.
func TestReapsOrphans(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	// The inner shell starts a short sleep in the background and exits at
	// once, orphaning it; the command then runs without reaping anything.
	cmd := initCmd(t, "--", "sh", "-c", `sh -c 'sleep 0.5 & echo $! >`+ready+`.tmp; mv `+ready+`.tmp `+ready+`'; exec sleep 30`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(unix.SIGTERM)
		cmd.Wait()
	}()
	orphan := readPid(t, ready)
	// It becomes the init's child, then exits and must be reaped.
	sawAdopted := false
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(orphan) + "/stat")
		if err != nil {
			break // reaped
		}
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
		if f[1] == strconv.Itoa(cmd.Process.Pid) {
			sawAdopted = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d not reaped: state %s, parent %s", orphan, f[0], f[1])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !sawAdopted {
		t.Error("the orphan was never the init's child")
	}
	if cmd.ProcessState != nil {
		t.Fatal("init exited with its command still running")
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s never appeared", path)
}

// A SIGTERM that comes while docker-init is starting is passed on all the
// same: the init blocks every signal before its child exists. Run as PID 1
// of a new pid namespace, as in a container (where a signal without a
// handler is dropped), and signalled from the first moment on; a Go init
// lost such signals or ended with status 2.
func TestEarlySignal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a pid namespace)")
	}
	for i := 0; i < 20; i++ {
		cmd := initCmd(t, "--", "sleep", "30")
		cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWPID}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.After(20 * time.Second)
	loop:
		for {
			cmd.Process.Signal(unix.SIGTERM)
			select {
			case <-done:
				break loop
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("round %d: init did not end", i)
			case <-time.After(100 * time.Microsecond):
			}
		}
		if code := cmd.ProcessState.ExitCode(); code != 128+int(unix.SIGTERM) {
			t.Fatalf("round %d: exit %d, want %d (the command killed by the forwarded SIGTERM)", i, code, 128+int(unix.SIGTERM))
		}
	}
}
