package oci_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/cgroup"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgParent holds the cgroups of this package's containers.
const cgParent = "/berth-oci-test"

// berthRuntime is the berth-runtime link to a fresh build of ./cmd/berth
// ($BERTH_BIN when set), for Binary.
var berthRuntime string

func TestMain(m *testing.M) {
	// Builtin re-executes this binary as the container's init.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.Init() // never returns
	}
	tmp, err := os.MkdirTemp("", "berth-oci-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Geteuid() == 0 {
		// Containers' inits are orphaned to us, as to the shim.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, "subreaper:", err)
			os.Exit(1)
		}
		bin, err := testenv.BerthBinary(tmp)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		berthRuntime = filepath.Join(tmp, "berth-runtime")
		os.Remove(berthRuntime) // make made it already
		if err := os.Symlink(bin, berthRuntime); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(tmp)
	if left := cgroupDirs(fmt.Sprintf("oci-t%d-*", os.Getpid()), true); len(left) > 0 {
		for _, d := range left {
			fmt.Fprintln(os.Stderr, "left behind:", d)
		}
		if code == 0 {
			code = 1
		}
	}
	for _, d := range cgroupDirs("", false) {
		os.Remove(d) // the parent, when no other test binary uses it
	}
	os.Exit(code)
}

// cgroupDirs returns the directories of cgroup cgParent/name in every
// hierarchy (v1) or the unified one; with glob, those that exist.
func cgroupDirs(name string, glob bool) []string {
	var dirs []string
	for _, pattern := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/*"} {
		matches, _ := filepath.Glob(filepath.Join(pattern, cgParent, name))
		dirs = append(dirs, matches...)
	}
	return dirs
}

// kind is one implementation of oci.Runtime under test.
type kind struct {
	name string
	new  func(t *testing.T, root string) oci.Runtime
}

func kinds() []kind {
	ks := []kind{{"builtin", func(t *testing.T, root string) oci.Runtime {
		r, err := oci.Builtin(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}}}
	binary := func(name, path string) {
		ks = append(ks, kind{name, func(t *testing.T, root string) oci.Runtime {
			if path == "" {
				t.Skipf("%s is not available", name)
			}
			if name == "crun" && !cgroup.Unified() {
				// crun refuses a hybrid host ("cgroups in hybrid
				// mode not supported"); test it on cgroup v2.
				t.Skip("crun is tested on cgroup v2 hosts only")
			}
			if _, err := os.Stat(path); err != nil {
				t.Skipf("%s is not installed: %v", name, err)
			}
			return oci.Binary(path, root)
		}})
	}
	binary("runc", "/usr/sbin/runc")
	binary("crun", "/usr/bin/crun")
	binary("berth-runtime", berthRuntime)
	return ks
}

// each runs f once per runtime, as subtests.
func each(t *testing.T, f func(t *testing.T, r oci.Runtime)) {
	for _, k := range kinds() {
		t.Run(k.name, func(t *testing.T) {
			testenv.RequiresRoot(t)
			testenv.RequiresBusybox(t)
			f(t, k.new(t, t.TempDir()))
		})
	}
}

var seq atomic.Int64

// container is one test container's id, bundle and cgroup.
type container struct {
	id, bundle, cgroup string
	spec               *specs.Spec
}

// newContainer writes a busybox bundle running args, its spec changed by
// edit, with a cgroup of its own; the container is deleted at the end of
// the test, and its cgroup must be gone.
func newContainer(t *testing.T, r oci.Runtime, edit func(*specs.Spec), args ...string) *container {
	t.Helper()
	c := &container{id: fmt.Sprintf("oci-t%d-%d", os.Getpid(), seq.Add(1))}
	c.cgroup = cgParent + "/" + c.id
	c.bundle = testenv.Bundle(t, func(s *specs.Spec) {
		s.Linux.CgroupsPath = c.cgroup
		s.Version = "1.0.2" // what the oldest runtime we test knows (crun 1.8)
		if edit != nil {
			edit(s)
		}
		c.spec = s
	}, args...)
	t.Cleanup(func() {
		r.Delete(context.Background(), c.id, true)
		if left := cgroupDirs(c.id, true); len(left) > 0 {
			t.Errorf("cgroup left behind: %v", left)
		}
	})
	return c
}

// checkGone fails t unless container c has no state and no cgroup.
func checkGone(t *testing.T, r oci.Runtime, c *container) {
	t.Helper()
	if st, err := r.State(context.Background(), c.id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("State after delete = %+v, %v; want ErrNotFound", st, err)
	}
	if left := cgroupDirs(c.id, true); len(left) > 0 {
		t.Errorf("cgroup left behind: %v", left)
	}
}

// wait reaps pid (a child of the test: directly, or as subreaper) and
// returns its wait status; after d it kills it and fails.
func wait(t *testing.T, pid int, d time.Duration) unix.WaitStatus {
	t.Helper()
	type res struct {
		ws  unix.WaitStatus
		err error
	}
	done := make(chan res, 1)
	go func() {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		for errors.Is(err, unix.EINTR) {
			_, err = unix.Wait4(pid, &ws, 0, nil)
		}
		done <- res{ws, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("wait4(%d): %v", pid, r.err)
		}
		return r.ws
	case <-time.After(d):
		unix.Kill(pid, unix.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second): // frozen, or not our child
		}
		t.Fatalf("process %d still running after %v", pid, d)
	}
	return 0
}

// reapZombies reaps the children of the test that have exited, as a
// shim's reaper does: processes a runtime binary orphaned to us.
func reapZombies() {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(self) {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

func checkStatus(t *testing.T, r oci.Runtime, id string, want specs.ContainerState) *specs.State {
	t.Helper()
	st, err := r.State(context.Background(), id)
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	if st.Status != want {
		t.Fatalf("State = %q, want %q", st.Status, want)
	}
	if st.ID != id {
		t.Errorf("State.ID = %q, want %q", st.ID, id)
	}
	return st
}

// pipe returns a pipe whose ends are closed at the end of the test.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// readAll reads f to EOF, failing after d.
func readAll(t *testing.T, f *os.File, d time.Duration) string {
	t.Helper()
	done := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(f)
		done <- b
	}()
	select {
	case b := <-done:
		return string(b)
	case <-time.After(d):
		t.Fatalf("no EOF after %v", d)
	}
	return ""
}

// TestRunEcho creates and starts /bin/echo with its stdout on a pipe: the
// output arrives, the exit status is reaped, and delete leaves nothing.
func TestRunEcho(t *testing.T) {
	each(t, func(t *testing.T, r oci.Runtime) {
		ctx := context.Background()
		c := newContainer(t, r, nil, "/bin/echo", "hello", "world")
		pr, pw := pipe(t)
		pid, err := r.Create(ctx, c.id, c.bundle, [3]*os.File{nil, pw, nil}, nil)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		pw.Close()
		if st := checkStatus(t, r, c.id, specs.StateCreated); st.Pid != pid {
			t.Errorf("State.Pid = %d, Create returned %d", st.Pid, pid)
		}
		if err := r.Start(ctx, c.id); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if out := readAll(t, pr, 30*time.Second); out != "hello world\n" {
			t.Errorf("output %q, want %q", out, "hello world\n")
		}
		if ws := wait(t, pid, 30*time.Second); !ws.Exited() || ws.ExitStatus() != 0 {
			t.Errorf("init ended with %v, want exit 0", ws)
		}
		checkStatus(t, r, c.id, specs.StateStopped)
		if err := r.Delete(ctx, c.id, false); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		checkGone(t, r, c)
	})
}

// TestExitCode: the exit status of init is the program's.
func TestExitCode(t *testing.T) {
	each(t, func(t *testing.T, r oci.Runtime) {
		c := newContainer(t, r, nil, "sh", "-c", "exit 7")
		pid := createStarted(t, r, c)
		if ws := wait(t, pid, 30*time.Second); !ws.Exited() || ws.ExitStatus() != 7 {
			t.Errorf("init ended with %v, want exit 7", ws)
		}
	})
}

// socketpair returns a connected pair of unix stream sockets.
func socketpair(t *testing.T) (a, b *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b = os.NewFile(uintptr(fds[0]), "console-a"), os.NewFile(uintptr(fds[1]), "console-b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// recvMaster receives the pty master sent on sock.
func recvMaster(t *testing.T, sock *os.File) *os.File {
	t.Helper()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	unix.SetsockoptTimeval(int(sock.Fd()), unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10})
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatalf("receive pty master: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive pty master: %d control messages, %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("receive pty master: %v, %v", fds, err)
	}
	f := os.NewFile(uintptr(fds[0]), "pty-master")
	t.Cleanup(func() { f.Close() })
	return f
}

// talk writes in to a pty master and reads until want appears (the pty
// echoes what is typed, so want should be what only the program prints).
func talk(t *testing.T, master *os.File, in, want string) string {
	t.Helper()
	if _, err := master.Write([]byte(in)); err != nil {
		t.Fatalf("write to pty: %v", err)
	}
	got := make(chan string, 1)
	go func() {
		var out []byte
		buf := make([]byte, 1024)
		for !strings.Contains(string(out), want) {
			n, err := master.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- string(out)
	}()
	select {
	case out := <-got:
		if !strings.Contains(out, want) {
			t.Fatalf("pty output %q lacks %q", out, want)
		}
		return out
	case <-time.After(30 * time.Second):
		t.Fatalf("pty: no %q after 30s", want)
	}
	return ""
}

// TestTerminal: a terminal container sends its pty master on the console
// socket, and the program reads and writes through it.
func TestTerminal(t *testing.T) {
	each(t, func(t *testing.T, r oci.Runtime) {
		ctx := context.Background()
		c := newContainer(t, r, func(s *specs.Spec) {
			s.Process.Terminal = true
		}, "sh", "-c", `read x; [ -t 0 ] && [ -t 1 ] && echo "got-$x-$(tty)"`)
		ours, theirs := socketpair(t)
		pid, err := r.Create(ctx, c.id, c.bundle, [3]*os.File{}, theirs)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		theirs.Close()
		master := recvMaster(t, ours)
		if err := r.Start(ctx, c.id); err != nil {
			t.Fatalf("Start: %v", err)
		}
		talk(t, master, "abc\n", "got-abc-/dev/")
		if ws := wait(t, pid, 30*time.Second); !ws.Exited() || ws.ExitStatus() != 0 {
			t.Errorf("init ended with %v, want exit 0", ws)
		}
	})
}

// TestExecTerminal: an exec with a terminal gets its own pty.
func TestExecTerminal(t *testing.T) {
	each(t, func(t *testing.T, r oci.Runtime) {
		ctx := context.Background()
		c := newContainer(t, r, nil, "sleep", "1000")
		pid := createStarted(t, r, c)
		ours, theirs := socketpair(t)
		p := &specs.Process{
			Terminal: true, Env: c.spec.Process.Env, Cwd: "/",
			Args: []string{"sh", "-c", `read x; [ -t 0 ] && echo "exec-$x-$(tty)"`},
		}
		epid, err := r.Exec(ctx, c.id, p, [3]*os.File{}, theirs)
		if err != nil {
			t.Fatalf("Exec: %v", err)
		}
		theirs.Close()
		master := recvMaster(t, ours)
		talk(t, master, "xyz\n", "exec-xyz-/dev/pts/")
		if ws := wait(t, epid, 30*time.Second); !ws.Exited() || ws.ExitStatus() != 0 {
			t.Errorf("exec ended with %v, want exit 0", ws)
		}
		if err := r.Delete(ctx, c.id, true); err != nil {
			t.Fatalf("Delete(force): %v", err)
		}
		if ws := wait(t, pid, 30*time.Second); !ws.Signaled() {
			t.Errorf("init ended with %v, want a signal", ws)
		}
		checkGone(t, r, c)
	})
}

// fakeRuntime writes a script that logs script's JSON lines to --log and
// exits with code, and returns a Binary running it.
func fakeRuntime(t *testing.T, logLines string, code int) oci.Runtime {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
log=
while [ $# -gt 0 ]; do [ "$1" = --log ] && log=$2; shift; done
printf '%%s' '%s' >> "$log"
sleep 0.2
echo "text on stderr" >&2
exit %d
`, logLines, code)
	path := filepath.Join(dir, "fake-runtime")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return oci.Binary(path, filepath.Join(dir, "root"))
}

// TestBinaryErrors: a binary's error is the msg of the last error in its
// JSON log, classified; its exit status decides, or, when a reaper took
// the status, the log.
func TestBinaryErrors(t *testing.T) {
	ctx := context.Background()
	notFound := `{"level":"warning","msg":"ignored"}` + "\n" + `{"level":"error","msg":"container does not exist"}` + "\n"
	err := fakeRuntime(t, notFound, 1).Kill(ctx, "x", unix.SIGTERM, false)
	if !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "fake-runtime kill: container does not exist" {
		t.Errorf("Kill = %v, want ErrNotFound with the log's msg", err)
	}
	err = fakeRuntime(t, "", 3).Pause(ctx, "x")
	if err == nil || !strings.Contains(err.Error(), "text on stderr") {
		t.Errorf("Pause = %v, want the stderr text", err)
	}
	err = fakeRuntime(t, `{"level":"warning","msg":"just a warning"}`+"\n", 0).Resume(ctx, "x")
	if err != nil {
		t.Errorf("Resume = %v, want nil", err)
	}
	crun := `{"msg": "executable file ` + "`nope`" + ` not found in $PATH: No such file or directory", "level": "error", "time": "2024-01-01T00:00:00Z"}` + "\n"
	_, err = fakeRuntime(t, crun, 1).Create(ctx, "x", t.TempDir(), [3]*os.File{}, nil)
	if !errors.Is(err, oci.ErrExecNotFound) {
		t.Errorf("Create = %v, want ErrExecNotFound", err)
	}

	// A reaper (the shim's wait4(-1)) takes the binary's exit status:
	// the log decides.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var ws unix.WaitStatus
			if _, err := unix.Wait4(-1, &ws, 0, nil); errors.Is(err, unix.ECHILD) {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	err1 := fakeRuntime(t, notFound, 1).Kill(ctx, "x", unix.SIGTERM, false)
	err2 := fakeRuntime(t, "", 0).Kill(ctx, "x", unix.SIGTERM, false)
	close(stop)
	<-done
	if !errors.Is(err1, errdefs.ErrNotFound) {
		t.Errorf("Kill (status reaped elsewhere) = %v, want ErrNotFound", err1)
	}
	if err2 != nil {
		t.Errorf("Kill (status reaped elsewhere) = %v, want nil", err2)
	}
}

// TestLifecycle walks a long-running container through its states, with
// an exec, pids, stats and an update on the way.
func TestLifecycle(t *testing.T) {
	each(t, func(t *testing.T, r oci.Runtime) {
		ctx := context.Background()
		c := newContainer(t, r, nil, "sleep", "1000")
		pid, err := r.Create(ctx, c.id, c.bundle, [3]*os.File{}, nil)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		checkStatus(t, r, c.id, specs.StateCreated)
		if err := r.Start(ctx, c.id); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if st := checkStatus(t, r, c.id, specs.StateRunning); st.Pid != pid || st.Bundle != c.bundle {
			t.Errorf("State = %+v, want pid %d bundle %s", st, pid, c.bundle)
		}
		if err := r.Start(ctx, c.id); err == nil {
			t.Errorf("second Start succeeded")
		}

		if err := r.Pause(ctx, c.id); err != nil {
			t.Fatalf("Pause: %v", err)
		}
		checkStatus(t, r, c.id, specs.ContainerState("paused"))
		if err := r.Resume(ctx, c.id); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		checkStatus(t, r, c.id, specs.StateRunning)

		// An exec, its output on a pipe.
		pr, pw := pipe(t)
		p := &specs.Process{Args: []string{"sh", "-c", "echo exec-$((6*7))"}, Env: c.spec.Process.Env, Cwd: "/"}
		epid, err := r.Exec(ctx, c.id, p, [3]*os.File{nil, pw, nil}, nil)
		if err != nil {
			t.Fatalf("Exec: %v", err)
		}
		pw.Close()
		if out := readAll(t, pr, 30*time.Second); out != "exec-42\n" {
			t.Errorf("exec output %q, want %q", out, "exec-42\n")
		}
		if ws := wait(t, epid, 30*time.Second); !ws.Exited() || ws.ExitStatus() != 0 {
			t.Errorf("exec ended with %v, want exit 0", ws)
		}
		if p.Cwd != "/" || len(p.Args) != 3 {
			t.Errorf("Exec changed its process: %+v", p)
		}
		// An exec of a program the container does not have.
		missing := &specs.Process{Args: []string{"no-such-program"}, Env: c.spec.Process.Env, Cwd: "/"}
		if _, err := r.Exec(ctx, c.id, missing, [3]*os.File{}, nil); !errors.Is(err, oci.ErrExecNotFound) {
			t.Errorf("Exec of a missing program = %v, want ErrExecNotFound", err)
		}
		// A binary may leave the killed process to us, the subreaper; a
		// zombie in its pid namespace would keep init from dying.
		reapZombies()

		pids, err := r.Pids(ctx, c.id)
		if err != nil || !slices.Contains(pids, pid) {
			t.Errorf("Pids = %v, %v; want it to hold init %d", pids, err, pid)
		}
		s, err := r.Stats(ctx, c.id)
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if s.MemoryUsage == 0 || s.PidsCurrent == 0 || s.CPUNanos == 0 {
			t.Errorf("Stats = %+v, want memory, pids and CPU", s)
		}
		if s.MemoryLimit != 0 || s.PidsLimit != 0 {
			t.Errorf("Stats = %+v, want no memory or pids limit", s)
		}
		limit := int64(10)
		if err := r.Update(ctx, c.id, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if s, err := r.Stats(ctx, c.id); err != nil || s.PidsLimit != 10 {
			t.Errorf("Stats after Update = %+v, %v; want pids limit 10", s, err)
		}
		if n, err := r.OOMKills(ctx, c.id); err != nil || n != 0 {
			t.Errorf("OOMKills = %d, %v; want 0", n, err)
		}

		if err := r.Delete(ctx, c.id, false); err == nil {
			t.Fatalf("Delete of a running container succeeded")
		}
		if err := r.Kill(ctx, c.id, unix.SIGKILL, false); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if ws := wait(t, pid, 30*time.Second); !ws.Signaled() || ws.Signal() != unix.SIGKILL {
			t.Errorf("init ended with %v, want SIGKILL", ws)
		}
		checkStatus(t, r, c.id, specs.StateStopped)
		if err := r.Delete(ctx, c.id, false); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		checkGone(t, r, c)
	})
}

// TestKillAll signals every process of the container, and a forced delete
// removes a running one.
func TestKillAll(t *testing.T) {
	each(t, func(t *testing.T, r oci.Runtime) {
		ctx := context.Background()
		c := newContainer(t, r, nil, "sh", "-c", "trap '' TERM; sleep 1000 & sleep 1000 & wait")
		pid := createStarted(t, r, c)
		deadline := time.Now().Add(10 * time.Second)
		for {
			pids, err := r.Pids(ctx, c.id)
			if err != nil {
				t.Fatalf("Pids: %v", err)
			}
			if len(pids) == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Pids = %v, want 3", pids)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := r.Kill(ctx, c.id, unix.SIGKILL, true); err != nil {
			t.Fatalf("Kill all: %v", err)
		}
		if ws := wait(t, pid, 30*time.Second); !ws.Signaled() || ws.Signal() != unix.SIGKILL {
			t.Errorf("init ended with %v, want SIGKILL", ws)
		}

		// A forced delete of a running container.
		c2 := newContainer(t, r, nil, "sleep", "1000")
		pid2, err := r.Create(ctx, c2.id, c2.bundle, [3]*os.File{}, nil)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := r.Start(ctx, c2.id); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if err := r.Delete(ctx, c2.id, true); err != nil {
			t.Fatalf("Delete(force): %v", err)
		}
		wait(t, pid2, 30*time.Second)
		checkGone(t, r, c2)
		if err := r.Delete(ctx, c2.id, true); err != nil {
			t.Errorf("Delete(force) of a deleted container: %v", err)
		}
	})
}

// TestOOM runs a shell past an 8 MiB memory limit: the OOM killer kills
// it, and OOMKills counts it.
func TestOOM(t *testing.T) {
	each(t, func(t *testing.T, r oci.Runtime) {
		ctx := context.Background()
		limit := int64(8 << 20)
		c := newContainer(t, r, func(s *specs.Spec) {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
		}, "sh", "-c", `x=0123456789abcdef; while :; do x=$x$x; done`)
		pid, err := r.Create(ctx, c.id, c.bundle, [3]*os.File{}, nil)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if s, err := r.Stats(ctx, c.id); err != nil || s.MemoryLimit != uint64(limit) {
			t.Errorf("Stats = %+v, %v; want memory limit %d", s, err, limit)
		}
		if err := r.Start(ctx, c.id); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if ws := wait(t, pid, time.Minute); !ws.Signaled() || ws.Signal() != unix.SIGKILL {
			t.Errorf("init ended with %v, want SIGKILL by the OOM killer", ws)
		}
		if n, err := r.OOMKills(ctx, c.id); err != nil || n < 1 {
			t.Errorf("OOMKills = %d, %v; want >= 1", n, err)
		}
		if err := r.Delete(ctx, c.id, false); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		checkGone(t, r, c)
	})
}

// TestExecErrors: a program that is missing or not executable fails
// Create with ErrExecNotFound or ErrExecPermission, leaving nothing.
func TestExecErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"not in PATH", []string{"no-such-program"}, oci.ErrExecNotFound},
		{"missing path", []string{"/bin/no-such-program"}, oci.ErrExecNotFound},
		{"not executable", []string{"/etc/passwd"}, oci.ErrExecPermission},
		{"directory", []string{"/bin"}, oci.ErrExecPermission},
	} {
		t.Run(tc.name, func(t *testing.T) {
			each(t, func(t *testing.T, r oci.Runtime) {
				c := newContainer(t, r, nil, tc.args...)
				pid, err := r.Create(context.Background(), c.id, c.bundle, [3]*os.File{}, nil)
				if !errors.Is(err, tc.want) {
					if err == nil {
						wait(t, pid, time.Second) // kills and reaps it
					}
					t.Fatalf("Create = %d, %v; want %v", pid, err, tc.want)
				}
				if errors.Is(err, oci.ErrExecNotFound) && errors.Is(err, oci.ErrExecPermission) {
					t.Errorf("%v is both not found and permission denied", err)
				}
				t.Logf("Create: %v", err)
				checkGone(t, r, c)
			})
		})
	}
}

// TestNotFound: a container that does not exist is errdefs.ErrNotFound.
func TestNotFound(t *testing.T) {
	each(t, func(t *testing.T, r oci.Runtime) {
		ctx := context.Background()
		if _, err := r.State(ctx, "no-such-container"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("State = %v, want ErrNotFound", err)
		}
		if err := r.Kill(ctx, "no-such-container", unix.SIGTERM, false); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Kill = %v, want ErrNotFound", err)
		}
		if err := r.Delete(ctx, "no-such-container", true); err != nil {
			t.Errorf("Delete(force) = %v, want nil", err)
		}
	})
}

// createStarted creates and starts c without stdio and returns init's pid.
func createStarted(t *testing.T, r oci.Runtime, c *container) int {
	t.Helper()
	ctx := context.Background()
	pid, err := r.Create(ctx, c.id, c.bundle, [3]*os.File{}, nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := r.Start(ctx, c.id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return pid
}
