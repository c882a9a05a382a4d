package shim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/shim"
	"golang.org/x/sys/unix"
)

// mountedConfig is config with the rootfs as a bind mount the shim makes.
func mountedConfig(t *testing.T, args ...string) shim.Config {
	t.Helper()
	cfg := config(t, nil, args...)
	src := t.TempDir()
	testenv.Rootfs(t, src)
	rootfs := filepath.Join(cfg.Bundle, "rootfs")
	if err := os.RemoveAll(rootfs); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Rootfs = []mount.Mount{{Type: "bind", Source: src, Options: []string{"rbind"}}}
	t.Cleanup(func() {
		if isMounted(rootfs) {
			t.Errorf("rootfs %s left mounted", rootfs)
			mount.UnmountAll(rootfs, unix.MNT_DETACH)
		}
	})
	return cfg
}

func isMounted(path string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// shimProcesses lists the pids of shims for bundle.
func shimProcesses(bundle string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range dirs {
		data, _ := os.ReadFile(f)
		args := strings.Split(string(data), "\x00")
		if len(args) > 2 && args[1] == "shim" && strings.Contains(string(data), bundle) {
			var pid int
			fmt.Sscanf(f, "/proc/%d/cmdline", &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestLaunchFailure: a missing program fails Launch with an error that
// wraps oci.ErrExecNotFound, and leaves no shim, state, runtime
// container or mount behind.
func TestLaunchFailure(t *testing.T) {
	cfg := mountedConfig(t, "/no/such/program")
	rootfs := filepath.Join(cfg.Bundle, "rootfs")
	_, err := launch(t, cfg)
	if !errors.Is(err, oci.ErrExecNotFound) {
		t.Fatalf("launch: %v, want ErrExecNotFound", err)
	}
	if !strings.Contains(err.Error(), "/no/such/program") {
		t.Errorf("error %q does not name the program", err)
	}
	if pids := shimProcesses(cfg.Bundle); len(pids) > 0 {
		t.Errorf("shim processes left: %v", pids)
	}
	if isMounted(rootfs) {
		t.Error("rootfs left mounted")
	}
	if _, err := shim.ReadState(cfg.StateDir); !errdefs.IsNotFound(err) {
		t.Errorf("state after failure: %v", err)
	}
	if _, err := os.Stat(cfg.SocketPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after failure: %v", err)
	}
	if entries, _ := os.ReadDir(cfg.RuntimeRoot); len(entries) > 0 {
		t.Errorf("runtime state after failure: %v", entries)
	}
}

// TestLaunchBadConfig: a config the shim cannot use is an invalid
// argument, reported before anything is made.
func TestLaunchBadConfig(t *testing.T) {
	cfg := config(t, nil, "true")
	cfg.Restart = shim.RestartPolicy{Name: "sometimes"}
	if _, err := launch(t, cfg); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("launch: %v, want invalid argument", err)
	}
}

// TestExitCommand: the exit command runs after the final exit, once the
// socket is gone, the runtime's container deleted and the rootfs
// unmounted.
func TestExitCommand(t *testing.T) {
	cfg := mountedConfig(t, "true")
	out := filepath.Join(t.TempDir(), "out")
	rootfs := filepath.Join(cfg.Bundle, "rootfs")
	cfg.ExitCommand = []string{"/bin/sh", "-c", fmt.Sprintf(
		`{ ls -A %s; test -e %s && echo socket; grep -q " %s " /proc/self/mountinfo && echo mounted; echo done; } > %s.tmp; mv %s.tmp %s`,
		cfg.RuntimeRoot, cfg.SocketPath, rootfs, out, out, out)}
	c := mustLaunch(t, cfg)
	if _, err := c.c.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.waitFinal()
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(out)
		if err == nil {
			if string(data) != "done\n" {
				t.Errorf("exit command saw %q, want only done", data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("exit command did not run")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSurvivesLauncher: the shim outlives a launcher killed with
// SIGKILL (with its whole process group), and ignores SIGTERM, SIGINT
// and SIGHUP sent to itself.
func TestSurvivesLauncher(t *testing.T) {
	cfg := config(t, nil, "sleep", "100")
	c := &ctr{t: t, cfg: cfg}
	writeConfig(t, cfg)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "SHIM_TEST_LAUNCH="+cfg.Bundle, "SHIM_TEST_BERTH="+berth)
	helper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := helper.StdoutPipe()
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "launched\n" {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper: %q", line)
	}
	t.Cleanup(c.cleanup)
	syscall.Kill(-helper.Process.Pid, syscall.SIGKILL)
	helper.Wait()
	st := c.state()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		syscall.Kill(st.ShimPid, sig)
	}
	time.Sleep(200 * time.Millisecond)
	if !c.state().ShimAlive() {
		t.Fatal("shim died with its launcher")
	}
	ctx := ctxT(t, time.Minute)
	var err error
	if c.c, err = shim.Dial(ctx, cfg.SocketPath); err != nil {
		t.Fatal(err)
	}
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.c.Stop(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	if st := c.waitFinal(); st.ExitCode != 137 {
		t.Errorf("state %+v", st)
	}
}

// helperLaunch is the launcher process of TestSurvivesLauncher.
func helperLaunch() {
	bundle := os.Getenv("SHIM_TEST_LAUNCH")
	if bundle == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := shim.Launch(ctx, os.Getenv("SHIM_TEST_BERTH"), bundle); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("launched")
	time.Sleep(time.Hour)
	os.Exit(0)
}

// TestLongSocketPath: a socket path beyond sun_path's 108 bytes works.
func TestLongSocketPath(t *testing.T) {
	cfg := config(t, nil, "echo", "hi")
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.SocketPath = filepath.Join(dir, "shim.sock")
	if len(cfg.SocketPath) <= 108 {
		t.Fatalf("socket path only %d bytes", len(cfg.SocketPath))
	}
	c := mustLaunch(t, cfg)
	var out buffer
	r := <-c.attachStart(ctxT(t, time.Minute), shim.AttachOptions{Stdout: &out})
	if r.err != nil || r.exit.Code != 0 || out.String() != "hi\n" {
		t.Errorf("attach: %+v %q", r, out.String())
	}
	c.waitFinal()
	if _, err := os.Stat(cfg.SocketPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

// TestDialErrors: no socket is not found; a socket nobody listens on is
// unavailable.
func TestDialErrors(t *testing.T) {
	ctx := ctxT(t, time.Minute)
	dir := t.TempDir()
	if _, err := shim.Dial(ctx, filepath.Join(dir, "none.sock")); !errdefs.IsNotFound(err) {
		t.Errorf("dial missing: %v", err)
	}
	path := filepath.Join(dir, "dead.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := shim.Dial(ctx, path); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("dial dead: %v", err)
	}
	if _, err := shim.ReadState(dir); !errdefs.IsNotFound(err) {
		t.Errorf("read absent state: %v", err)
	}
}

// TestShimRSS measures the resident memory of a shim serving a running
// container and an attached client.
func TestShimRSS(t *testing.T) {
	cfg := config(t, nil, "sh", "-c", "while :; do echo tick; sleep 0.05; done")
	c := mustLaunch(t, cfg)
	ctx, cancel := context.WithCancel(ctxT(t, time.Minute))
	defer cancel()
	var out buffer
	c.attachStart(ctx, shim.AttachOptions{Stdout: &out})
	waitFor(t, &out, "tick\ntick\ntick\n", 10*time.Second)
	pid := c.state().ShimPid
	rss := vmRSS(t, pid)
	t.Logf("shim VmRSS: %d kB (anon %s, file %s; threads: %s)", rss, procStatus(pid, "RssAnon"), procStatus(pid, "RssFile"), procStatus(pid, "Threads"))
	// Most of VmRSS is the berth binary's code and read-only data,
	// shared through the page cache by every shim; the shim's own
	// memory is its anonymous part.
	if rss > 32<<10 {
		t.Errorf("shim VmRSS %d kB, want well under 32 MB", rss)
	}
	var anon int
	fmt.Sscanf(procStatus(pid, "RssAnon"), "%d kB", &anon)
	if anon > 8<<10 {
		t.Errorf("shim RssAnon %d kB, want under 8 MB", anon)
	}
}

func procStatus(pid int, key string) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func vmRSS(t *testing.T, pid int) int {
	var kb int
	if _, err := fmt.Sscanf(procStatus(pid, "VmRSS"), "%d kB", &kb); err != nil {
		t.Fatalf("VmRSS of %d: %v", pid, err)
	}
	return kb
}

func writeConfig(t *testing.T, cfg shim.Config) {
	t.Helper()
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(cfg.Bundle, "shim.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPrestart: a monitor started ahead of its bundle creates the
// container once launched, launches once, and one sent away (Close)
// exits without a trace.
func TestPrestart(t *testing.T) {
	cfg := config(t, nil, "sh", "-c", "echo prestarted")
	m, err := shim.Prestart(berth, cfg.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the bundle is written after the process starts
	writeConfig(t, cfg)
	ctx := ctxT(t, time.Minute)
	if err := m.Launch(ctx, nil); err != nil {
		t.Fatalf("launch: %v", err)
	}
	c := &ctr{t: t, cfg: cfg}
	t.Cleanup(c.cleanup)
	if c.c, err = shim.Dial(ctx, cfg.SocketPath); err != nil {
		t.Fatal(err)
	}
	var out buffer
	if r := <-c.attachStart(ctx, shim.AttachOptions{Stdout: &out}); r.err != nil || r.exit.Code != 0 || out.String() != "prestarted\n" {
		t.Fatalf("attach: %+v %q", r, out.String())
	}
	c.waitFinal()
	if err := m.Launch(ctx, nil); err == nil {
		t.Fatal("a second launch on one monitor succeeded")
	}

	unused, err := shim.Prestart(berth, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pid := unused.Pid()
	time.Sleep(50 * time.Millisecond)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(b), ") Z ") {
		t.Fatalf("the unused monitor did not wait for its bundle: %s %v", b, err)
	}
	unused.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor %d still runs after Close: %s", pid, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
