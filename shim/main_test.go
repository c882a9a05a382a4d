package shim_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// berth is the binary under test: $BERTH_BIN, else a fresh build.
var berth string

func TestMain(m *testing.M) {
	helperLaunch()
	tmp, err := os.MkdirTemp("", "berth-shim-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Geteuid() == 0 || os.Getenv("BERTH_BIN") != "" {
		if berth, err = testenv.BerthBinary(tmp); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(tmp)
	if code == 0 && testenv.CgroupLeftovers(fmt.Sprintf("berth/t%d-*", os.Getpid())) {
		code = 1
	}
	os.Exit(code)
}

var idSeq atomic.Int64

// ctr is one test container under a shim.
type ctr struct {
	t   *testing.T
	cfg shim.Config
	c   *shim.Client
}

// config returns a shim config for a fresh busybox bundle running args;
// edit may change the spec.
func config(t *testing.T, edit func(*specs.Spec), args ...string) shim.Config {
	t.Helper()
	testenv.RequiresRoot(t)
	testenv.RequiresBusybox(t)
	if berth == "" {
		t.Skip("no berth binary")
	}
	bundle := testenv.Bundle(t, edit, args...)
	state := t.TempDir()
	return shim.Config{
		ID:          fmt.Sprintf("t%d-%d", os.Getpid(), idSeq.Add(1)),
		Bundle:      bundle,
		RuntimeRoot: t.TempDir(),
		StateDir:    state,
		SocketPath:  filepath.Join(state, "shim.sock"),
		LogPath:     filepath.Join(state, "container-json.log"),
	}
}

// launch writes cfg to the bundle and launches its shim.
func launch(t *testing.T, cfg shim.Config) (*ctr, error) {
	t.Helper()
	writeConfig(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := shim.Launch(ctx, berth, cfg.Bundle); err != nil {
		return nil, err
	}
	c := &ctr{t: t, cfg: cfg}
	t.Cleanup(c.cleanup)
	var err error
	if c.c, err = shim.Dial(ctx, cfg.SocketPath); err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c, nil
}

// mustLaunch launches or fails the test.
func mustLaunch(t *testing.T, cfg shim.Config) *ctr {
	t.Helper()
	c, err := launch(t, cfg)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	return c
}

// cleanup kills whatever the test left running and waits for the shim
// to finish; then nothing of the container may remain.
func (c *ctr) cleanup() {
	t := c.t
	st, err := shim.ReadState(c.cfg.StateDir)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	if st.ShimAlive() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c.c.Stop(ctx, "SIGKILL", 0)
		cancel()
	}
	c.waitShimGone(st.ShimPid)
	entries, _ := os.ReadDir(c.cfg.RuntimeRoot)
	for _, e := range entries {
		t.Errorf("runtime state left behind: %s", e.Name())
		exec.Command(berth, "runtime", "--root", c.cfg.RuntimeRoot, "delete", "-f", e.Name()).Run()
	}
}

// waitShimGone waits for the shim process pid to exit.
func (c *ctr) waitShimGone(pid int) {
	c.t.Helper()
	if pid == 0 {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(data), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Errorf("shim %d still runs", pid)
}

func (c *ctr) state() shim.State {
	c.t.Helper()
	st, err := shim.ReadState(c.cfg.StateDir)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// waitState polls the state until ok accepts it.
func (c *ctr) waitState(what string, d time.Duration, ok func(shim.State) bool) shim.State {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := c.state()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s; state %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExit is the container's exit from the shim (Wait), or from its
// final state when the shim has finished already: a process that dies at
// once can take its shim with it before a Wait dials in.
func (c *ctr) waitExit(ctx context.Context) shim.Exit {
	c.t.Helper()
	e, err := c.c.Wait(ctx)
	if errdefs.IsNotFound(err) {
		st := c.waitFinal()
		return shim.Exit{Code: st.ExitCode, OOMKilled: st.OOMKilled, FinishedAt: st.FinishedAt}
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return e
}

// waitFinal waits until the shim has finished: final state written and
// the shim gone.
func (c *ctr) waitFinal() shim.State {
	c.t.Helper()
	st := c.waitState("final exit", time.Minute, func(st shim.State) bool { return st.Status == shim.StatusExited && !st.ShimAlive() })
	return st
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// buffer is a bytes.Buffer safe for a writer and a reader goroutine.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor polls buf until it contains s.
func waitFor(t *testing.T, buf *buffer, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(buf.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q; got %q", s, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// attachStart attaches (with o) and starts the container, returning the
// exit of the attach.
func (c *ctr) attachStart(ctx context.Context, o shim.AttachOptions) <-chan attachResult {
	c.t.Helper()
	ready := make(chan struct{})
	o.Attached = func() { close(ready) }
	res := make(chan attachResult, 1)
	go func() {
		e, err := c.c.Attach(ctx, o)
		res <- attachResult{e, err}
	}()
	select {
	case <-ready:
	case r := <-res:
		c.t.Fatalf("attach: %+v", r)
	}
	if _, err := c.c.Start(ctx); err != nil {
		c.t.Fatalf("start: %v", err)
	}
	return res
}

type attachResult struct {
	exit shim.Exit
	err  error
}
