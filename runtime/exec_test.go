package runtime_test

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// consoleSocket listens on a unix socket, as a runc console socket
// consumer does, and hands out the pty master it receives.
type consoleSocket struct {
	path   string
	l      *net.UnixListener
	master chan *os.File
	err    chan error
}

func newConsoleSocket(t *testing.T) *consoleSocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "cs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &consoleSocket{path: filepath.Join(dir, "console.sock"), master: make(chan *os.File, 1), err: make(chan error, 1)}
	c.l, err = net.ListenUnix("unix", &net.UnixAddr{Name: c.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.l.Close() })
	go func() {
		conn, err := c.l.AcceptUnix()
		if err != nil {
			c.err <- err
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			c.err <- err
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			c.err <- err
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			c.err <- err
			return
		}
		c.master <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	return c
}

// get waits for the master.
func (c *consoleSocket) get(t *testing.T) *os.File {
	t.Helper()
	select {
	case m := <-c.master:
		t.Cleanup(func() { m.Close() })
		return m
	case err := <-c.err:
		t.Fatalf("console socket: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("console socket: no master received")
	}
	return nil
}

// readUntil reads from the pty master until the output contains want,
// EOF/EIO or a timeout; it returns what it read.
func readUntil(t *testing.T, m *os.File, want string) string {
	t.Helper()
	var out bytes.Buffer
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), want) && time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(m.Fd()), Events: unix.POLLIN}}
		n, _ := unix.Poll(fds, 200)
		if n == 0 {
			continue
		}
		k, err := unix.Read(int(m.Fd()), buf)
		if k > 0 {
			out.Write(buf[:k])
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR || k == 0 && err == nil {
			break
		}
	}
	return out.String()
}

func TestExecBasics(t *testing.T) {
	r := newRT(t)
	cid, _ := r.startNew(nil, sleeper()...)
	if out := r.must("exec", cid, "hostname"); out != "berth\n" {
		t.Errorf("exec hostname = %q, want berth", out)
	}
	if out := strings.TrimSpace(r.must("exec", cid, "sh", "-c", "echo $$")); out == "1" || out == "" {
		t.Errorf("exec echo $$ = %q, want a pid other than 1", out)
	}
	ps := r.must("exec", cid, "ps", "-o", "pid,args")
	found := false
	for _, l := range strings.Split(ps, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "1" && strings.Contains(l, "sleep") {
			found = true
		}
	}
	if !found {
		t.Errorf("exec ps does not list the init as pid 1:\n%s", ps)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--env", "FOO=bar", "-e", "BAZ=qux", cid, "sh", "-c", "echo $FOO $BAZ"}, "bar qux\n"},
		{[]string{"--cwd", "/tmp", cid, "pwd"}, "/tmp\n"},
		{[]string{"--user", "1000:1000", cid, "sh", "-c", "id -u; id -g"}, "1000\n1000\n"},
		{[]string{"--user", "1000", cid, "id", "-u"}, "1000\n"},
		{[]string{"--user", "1000:1000", "--additional-gids", "100", "--additional-gids", "65534", cid, "id", "-G"}, "1000 100 65534\n"},
		{[]string{cid, "sh", "-c", "echo out; echo err >&2"}, "out\n"},
	} {
		res := r.run(append([]string{"exec"}, tc.args...)...)
		if res.code != 0 || res.stdout != tc.want {
			t.Errorf("exec %v = exit %d, %q (stderr %q); want %q", tc.args, res.code, res.stdout, res.stderr, tc.want)
		}
	}
	if res := r.run("exec", cid, "sh", "-c", "echo err >&2"); res.stderr != "err\n" {
		t.Errorf("exec stderr = %q", res.stderr)
	}
	// stdin reaches the process.
	if res := r.runIn([]byte("piped\n"), "exec", cid, "cat"); res.stdout != "piped\n" {
		t.Errorf("exec cat with stdin = %q (%s)", res.stdout, res.stderr)
	}
	for _, code := range []int{0, 1, 3, 42} {
		if res := r.run("exec", cid, "sh", "-c", "exit "+strconv.Itoa(code)); res.code != code {
			t.Errorf("exec exit %d = %d (%s)", code, res.code, res.stderr)
		}
	}
	if res := r.run("exec", cid, "sh", "-c", "kill -9 $$"); res.code != 137 {
		t.Errorf("exec killed by SIGKILL = exit %d, want 137", res.code)
	}
	if res := r.run("exec", cid, "/no/such/binary"); res.code == 0 || res.stderr == "" {
		t.Errorf("exec of a missing binary = exit %d, %q", res.code, res.stderr)
	}
	// The exec'd processes are gone; only the init remains.
	var pids []int
	json.Unmarshal([]byte(r.must("ps", "--format", "json", cid)), &pids)
	if len(pids) != 1 {
		t.Errorf("processes left after the execs: %v", pids)
	}
}

func TestExecProcessFile(t *testing.T) {
	r := newRT(t)
	cid, _ := r.startNew(nil, sleeper()...)
	p := specs.Process{
		Args: []string{"sh", "-c", "echo $GREETING; pwd; id -u"},
		Env:  []string{"PATH=/bin", "GREETING=hello"},
		Cwd:  "/dev",
		User: specs.User{UID: 65534, GID: 65534},
	}
	data, _ := json.Marshal(p)
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, data, 0o644)
	res := r.run("exec", "--process", pf, cid)
	if res.code != 0 || res.stdout != "hello\n/dev\n65534\n" {
		t.Errorf("exec --process = exit %d, %q, %q", res.code, res.stdout, res.stderr)
	}
	// -p - reads it from stdin.
	res = r.runIn(data, "exec", "-p", "-", cid)
	if res.code != 0 || res.stdout != "hello\n/dev\n65534\n" {
		t.Errorf("exec -p - = exit %d, %q, %q", res.code, res.stdout, res.stderr)
	}
	os.WriteFile(pf, []byte("{not json"), 0o644)
	if res := r.run("exec", "--process", pf, cid); res.code != 1 {
		t.Errorf("exec with a malformed process.json = exit %d", res.code)
	}
}

func TestExecDetach(t *testing.T) {
	r := newRT(t)
	cid, _ := r.startNew(nil, sleeper()...)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	code, out := r.runDetached("exec", "--detach", "--pid-file", pidFile, cid, "sleep", "500")
	if code != 0 {
		data, _ := os.ReadFile(out)
		t.Fatalf("exec --detach: exit %d: %s", code, data)
	}
	data, err := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(string(data))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file = %q, %v", data, err)
	}
	var pids []int
	json.Unmarshal([]byte(r.must("ps", "--format", "json", cid)), &pids)
	found := false
	for _, p := range pids {
		found = found || p == pid
	}
	if !found || len(pids) != 2 {
		t.Errorf("ps = %v, want the init and %d", pids, pid)
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if !bytes.HasPrefix(cmdline, []byte("sleep\x00500")) {
		t.Errorf("pid %d runs %q", pid, cmdline)
	}
	// kill --all reaches the exec'd process too.
	r.must("kill", "--all", cid, "KILL")
	r.waitStatus(cid, "stopped")
	waitFor(t, "exec'd process gone", func() bool {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(st), ") Z")
	})
}

func TestExecTTY(t *testing.T) {
	r := newRT(t)
	cid, _ := r.startNew(nil, sleeper()...)

	cs := newConsoleSocket(t)
	done := make(chan result, 1)
	go func() {
		done <- r.run("exec", "--tty", "--console-socket", cs.path, cid, "sh", "-c", "tty; echo exec-done")
	}()
	m := cs.get(t)
	out := readUntil(t, m, "exec-done")
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "exec-done") {
		t.Errorf("exec --tty --console-socket output = %q", out)
	}
	if res := <-done; res.code != 0 {
		t.Errorf("exec --tty --console-socket = exit %d, %s", res.code, res.stderr)
	}

	// Without a console socket in the foreground: the runtime proxies the
	// pty itself; stdin is not a terminal and that is fine.
	res := r.run("exec", "--tty", cid, "sh", "-c", "test -t 1 && echo is-a-tty; exit 5")
	if !strings.Contains(res.stdout, "is-a-tty") || res.code != 5 {
		t.Errorf("exec --tty = exit %d, %q, %q", res.code, res.stdout, res.stderr)
	}
	// -t with --detach needs a console socket.
	if res := r.run("exec", "--tty", "--detach", cid, "true"); res.code != 1 {
		t.Errorf("exec --tty --detach without a socket = exit %d", res.code)
	}
}

func TestExecStoppedAndPaused(t *testing.T) {
	r := newRT(t)
	b := testenv.Bundle(t, nil, "true")
	cid := id(t)
	r.create(b, cid)
	r.must("start", cid)
	r.waitStatus(cid, "stopped")
	res := r.run("exec", cid, "true")
	if res.code != 1 || !strings.Contains(res.stderr, "cannot exec in a stopped container") {
		t.Errorf("exec into a stopped container = exit %d, %q", res.code, res.stderr)
	}
	if res := r.run("exec", "nosuch", "true"); res.code != 1 {
		t.Errorf("exec into a missing container = exit %d", res.code)
	}

	pc, _ := r.startNew(nil, sleeper()...)
	r.must("pause", pc)
	if res := r.run("exec", pc, "true"); res.code != 1 || !strings.Contains(res.stderr, "paused") {
		t.Errorf("exec into a paused container = exit %d, %q", res.code, res.stderr)
	}
	done := make(chan result, 1)
	go func() { done <- r.run("exec", "--ignore-paused", pc, "echo", "thawed") }()
	time.Sleep(500 * time.Millisecond)
	r.must("resume", pc)
	select {
	case res := <-done:
		if res.code != 0 || res.stdout != "thawed\n" {
			t.Errorf("exec --ignore-paused = exit %d, %q, %q", res.code, res.stdout, res.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("exec --ignore-paused did not finish after resume")
	}
}

// TestCreateConsole runs a shell with process.terminal: the console
// socket gets the master, the shell's tty is /dev/pts/0 and /dev/console
// exists.
func TestCreateConsole(t *testing.T) {
	r := newRT(t)
	b := testenv.Bundle(t, func(s *specs.Spec) { s.Process.Terminal = true }, "sh")
	cid := id(t)
	// Without a console socket, create refuses a terminal.
	if res := r.run("create", "--bundle", b, cid); res.code != 1 || !strings.Contains(res.stderr, "console") {
		t.Errorf("create of a terminal without --console-socket = exit %d, %q", res.code, res.stderr)
	}
	cs := newConsoleSocket(t)
	r.create(b, cid, "--console-socket", cs.path)
	m := cs.get(t)
	r.must("start", cid)
	m.Write([]byte("echo h''i\n"))
	if out := readUntil(t, m, "hi\r\n"); !strings.Contains(out, "hi\r\n") {
		t.Errorf("echo hi through the console = %q", out)
	}
	m.Write([]byte("tty; test -c /dev/console && echo con''sole-ok\n"))
	out := readUntil(t, m, "console-ok")
	if !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "console-ok") {
		t.Errorf("tty / /dev/console = %q", out)
	}
	m.Write([]byte("exit 3\n"))
	r.waitStatus(cid, "stopped")
	r.must("delete", cid)
}

// TestExecEnvOverride: --env replaces a variable of the container's
// process rather than adding a second copy that getenv would not see.
func TestExecEnvOverride(t *testing.T) {
	r := newRT(t)
	cid, _ := r.startNew(func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "FOO=old") }, sleeper()...)
	if out := r.must("exec", "--env", "FOO=new", cid, "env"); !strings.Contains(out, "FOO=new\n") || strings.Contains(out, "FOO=old") {
		t.Errorf("exec --env FOO=new: environment is\n%s", out)
	}
}

// TestKillPaused: a signal to a paused container is delivered once it is
// resumed, and SIGKILL through kill --all or delete --force ends it.
func TestKillPaused(t *testing.T) {
	r := newRT(t)
	cid, _ := r.startNew(nil, "sh", "-c", "sleep 1000 & sleep 1000")
	r.must("pause", cid)
	r.must("kill", "--all", cid, "KILL")
	r.must("resume", cid)
	r.waitStatus(cid, "stopped")
	r.must("delete", cid)

	cid, _ = r.startNew(nil, sleeper()...)
	r.must("pause", cid)
	r.must("kill", cid, "KILL")
	r.must("resume", cid)
	r.waitStatus(cid, "stopped")
	r.must("delete", cid)
}

// TestRunForeground covers what `run` does beyond create + start:
// signals reach the process, stdin is passed, --keep keeps it.
func TestRunForeground(t *testing.T) {
	r := newRT(t)
	b := testenv.Bundle(t, nil, "sh", "-c", "trap 'echo got-term; exit 9' TERM; echo ready; while true; do sleep 0.1; done")
	cmd := exec.Command(berthRuntime, "--root", r.root, "run", "--bundle", b, id(t))
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return strings.Contains(out.String(), "ready") })
	cmd.Process.Signal(unix.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run did not forward SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 9 || !strings.Contains(out.String(), "got-term") {
		t.Errorf("run after SIGTERM = exit %d, %q", code, out.String())
	}

	if res := r.runIn([]byte("from-stdin\n"), "run", "--bundle", testenv.Bundle(t, nil, "cat"), id(t)); res.stdout != "from-stdin\n" {
		t.Errorf("run cat = %q", res.stdout)
	}

	kept := id(t)
	if res := r.run("run", "--keep", "--bundle", testenv.Bundle(t, nil, "true"), kept); res.code != 0 {
		t.Fatalf("run --keep = exit %d: %s", res.code, res.stderr)
	}
	if s := r.state(kept); s.Status != "stopped" {
		t.Errorf("run --keep left %+v", s)
	}
	r.must("delete", kept)
}

// TestPreserveFDs passes an extra fd to the container's process.
func TestPreserveFDs(t *testing.T) {
	r := newRT(t)
	f, err := os.CreateTemp(t.TempDir(), "extra")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("extra-fd-content\n")
	f.Seek(0, 0)
	b := testenv.Bundle(t, nil, "sh", "-c", "cat <&3; ls /proc/self/fd | wc -l")
	cmd := exec.Command(berthRuntime, "--root", r.root, "run", "--preserve-fds", "1", "--bundle", b, id(t))
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	// fds 0-3, and ls's own.
	if err != nil || string(out) != "extra-fd-content\n5\n" {
		t.Errorf("run --preserve-fds 1 = %v, %q", err, out)
	}
}
