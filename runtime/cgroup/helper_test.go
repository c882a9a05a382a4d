package cgroup

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// helperEnv selects a helper mode when the test binary re-executes itself:
// the v2 VM has no userland beyond busybox, so the test binary is the one
// program certain to exist everywhere.
const helperEnv = "BERTH_CGROUP_TEST_HELPER"

// testRoot is the cgroup under which this test run creates its cgroups;
// TestMain removes it.
var testRoot = "/berth-test-" + randomHex()

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	code := m.Run()
	if os.Geteuid() == 0 {
		if mgr, err := New(testRoot); err == nil {
			if err := mgr.Destroy(); err != nil {
				fmt.Fprintf(os.Stderr, "cleanup %s: %v\n", testRoot, err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// runHelper is the body of a helper process. Modes starting with "wait-"
// first read a line from stdin, so that the test can move the process into
// a cgroup before it does anything interesting.
func runHelper(mode string) int {
	if strings.HasPrefix(mode, "wait-") {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return 3
		}
		mode = strings.TrimPrefix(mode, "wait-")
	}
	switch mode {
	case "sleep":
		time.Sleep(time.Hour)
	case "spin":
		for x := uint64(0); ; x++ {
			if x == 1<<63 {
				fmt.Println(x)
			}
		}
	case "alloc":
		// Allocate and touch memory until the OOM killer ends us.
		debug.SetGCPercent(-1)
		var keep [][]byte
		for i := 0; i < 1024; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep), "MiB")
	case "hold":
		// Touch 8 MiB, say so, and keep it.
		b := make([]byte, 8<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		fmt.Println("held")
		time.Sleep(time.Hour)
		b[0] = 2
	case "devices":
		// Report, per device, whether open for reading and writing works.
		for _, dev := range []string{"/dev/null", "/dev/zero"} {
			f, err := os.OpenFile(dev, os.O_RDWR, 0)
			res := "ok"
			if err != nil {
				res = "err"
				if errors.Is(err, unix.EPERM) {
					res = "EPERM"
				}
			} else {
				f.Close()
			}
			fmt.Printf("%s=%s\n", dev, res)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		return 2
	}
	return 0
}

// requireRoot skips tests that need to create cgroups.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("test requires root")
	}
}

// newManager returns a manager for a cgroup named after the test, not yet
// created, and destroys the cgroup when the test ends.
func newManager(t *testing.T) Manager {
	t.Helper()
	requireRoot(t)
	p := testRoot + "/" + strings.ReplaceAll(t.Name(), "/", "_")
	m, err := New(p)
	if err != nil {
		t.Fatalf("New(%q): %v", p, err)
	}
	t.Cleanup(func() {
		_ = m.Signal(unix.SIGKILL)
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy(%q): %v", p, err)
		}
	})
	return m
}

// createManager is newManager followed by Create(r).
func createManager(t *testing.T, r *specs.LinuxResources) Manager {
	t.Helper()
	m := newManager(t)
	if err := m.Create(r); err != nil {
		t.Fatalf("Create(%q): %v", m.Path(), err)
	}
	return m
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
	done  chan struct{}
	err   error // Wait's result, once done is closed
}

// syncBuffer is a bytes.Buffer safe for the exec copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startHelper starts the test binary in a helper mode, or argv when mode
// is empty. attr, if not nil, is used as the command's SysProcAttr.
func startHelper(t *testing.T, mode string, argv []string, attr *syscall.SysProcAttr) *helper {
	t.Helper()
	var cmd *exec.Cmd
	if mode != "" {
		cmd = exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	cmd.SysProcAttr = attr
	h := &helper{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = h.out, h.out
	var err error
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %q %v: %v", mode, argv, err)
	}
	go func() {
		h.err = cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		h.stdin.Close()
		_ = cmd.Process.Kill()
		<-h.done
	})
	return h
}

// release lets a "wait-" helper go on.
func (h *helper) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(h.stdin, "go\n"); err != nil {
		t.Fatalf("release helper: %v", err)
	}
}

// wait waits for the helper to exit and returns its wait status.
func (h *helper) wait(t *testing.T, timeout time.Duration) syscall.WaitStatus {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(timeout):
		t.Fatalf("helper %d still running after %s; output:\n%s", h.cmd.Process.Pid, timeout, h.out)
	}
	return h.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// waitOutput waits until the helper's output contains s.
func (h *helper) waitOutput(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(h.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("helper output has no %q after %s:\n%s", s, timeout, h.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procCgroup returns the cgroup of pid in the hierarchy that /proc lists
// under key ("" for cgroup2, "memory", "cpu", ...).
func procCgroup(t *testing.T, pid int, key string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range parseProcCgroup(string(b)) {
		for _, c := range strings.Split(k, ",") {
			if c == key {
				return v
			}
		}
		if k == key {
			return v
		}
	}
	t.Fatalf("/proc/%d/cgroup has no %q line:\n%s", pid, key, b)
	return ""
}

// cpuTicks returns utime+stime of pid from /proc/<pid>/stat.
func cpuTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	k, _ := strconv.ParseUint(f[12], 10, 64)
	return u + k
}

// procState returns the State line of /proc/<pid>/status.
func procState(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// blockDevice returns the major:minor of a block device of this machine
// (a virtio or SCSI disk if there is one), or "" if there is none.
func blockDevice() (int64, int64, bool) {
	entries, _ := os.ReadDir("/sys/block")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.SliceStable(names, func(i, j int) bool {
		rank := func(n string) int {
			if strings.HasPrefix(n, "vd") || strings.HasPrefix(n, "sd") || strings.HasPrefix(n, "nvme") {
				return 0
			}
			return 1
		}
		return rank(names[i]) < rank(names[j])
	})
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("/sys/block", n, "dev"))
		if err != nil {
			continue
		}
		maj, min, ok := parseDev(strings.TrimSpace(string(b)))
		if ok {
			return int64(maj), int64(min), true
		}
	}
	return 0, 0, false
}

// file reads a file of the cgroup in the hierarchy of controller c (the
// cgroup directory itself on v2).
func file(t *testing.T, m Manager, c, name string) string {
	t.Helper()
	dir := ctrlDir(t, m, c)
	s, err := readFile(dir, name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return s
}

// ctrlDir returns the cgroup's directory for controller c.
func ctrlDir(t *testing.T, m Manager, c string) string {
	t.Helper()
	switch m := m.(type) {
	case *v2:
		return m.dir
	case *v1:
		d, ok := m.dir(c)
		if !ok {
			t.Skipf("the %s controller is not mounted", c)
		}
		return d
	}
	t.Fatalf("unknown manager %T", m)
	return ""
}

// hasController reports whether this host's cgroup m can use controller c.
func hasController(t *testing.T, m Manager, c string) bool {
	t.Helper()
	switch m := m.(type) {
	case *v2:
		// What the root has, the cgroup gets: Create enables it all.
		s, err := readFile(m.mount.mountpoint, "cgroup.controllers")
		return err == nil && strings.Contains(" "+s+" ", " "+c+" ")
	case *v1:
		_, ok := m.dir(c)
		return ok
	}
	return false
}
