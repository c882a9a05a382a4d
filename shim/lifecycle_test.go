package shim_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestStopGraceful: a container that exits on SIGTERM stops with its own
// code, well before the timeout.
func TestStopGraceful(t *testing.T) {
	c := mustLaunch(t, config(t, nil, "sh", "-c", "trap 'exit 5' TERM; echo ready; while :; do sleep 0.1; done"))
	ctx := ctxT(t, time.Minute)
	var out buffer
	res := c.attachStart(ctx, shim.AttachOptions{Stdout: &out})
	waitFor(t, &out, "ready", 10*time.Second)
	begin := time.Now()
	if err := c.c.Stop(ctx, "", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("stop took %v", d)
	}
	if r := <-res; r.err != nil || r.exit.Code != 5 {
		t.Errorf("attach: %+v", r)
	}
	if st := c.waitFinal(); st.ExitCode != 5 || !st.ManualStop {
		t.Errorf("state %+v", st)
	}
}

// TestStopEscalates: a container that ignores SIGTERM is SIGKILLed once
// the timeout has passed.
func TestStopEscalates(t *testing.T) {
	cfg := config(t, nil, "sh", "-c", "trap 'echo term' TERM; echo ready; while :; do sleep 0.1; done")
	cfg.StopTimeout = 1
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	var out buffer
	res := c.attachStart(ctx, shim.AttachOptions{Stdout: &out})
	waitFor(t, &out, "ready", 10*time.Second)
	begin := time.Now()
	if err := c.c.Stop(ctx, "", -1); err != nil { // Config.StopTimeout
		t.Fatal(err)
	}
	if d := time.Since(begin); d < time.Second || d > 10*time.Second {
		t.Errorf("stop took %v, want about 1s", d)
	}
	r := <-res
	if r.err != nil || r.exit.Code != 137 {
		t.Errorf("attach: %+v", r)
	}
	if !strings.Contains(out.String(), "term") {
		t.Errorf("SIGTERM was not delivered first: %q", out.String())
	}
	c.waitFinal()
}

// TestRestartOnFailure: on-failure:2 runs the process three times.
func TestRestartOnFailure(t *testing.T) {
	cfg := config(t, nil, "sh", "-c", "echo run; exit 3")
	cfg.Restart = shim.RestartPolicy{Name: "on-failure", MaxRetries: 2}
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st := c.waitFinal()
	if st.RestartCount != 2 || st.ExitCode != 3 || st.Status != shim.StatusExited {
		t.Errorf("state %+v", st)
	}
	data, _ := os.ReadFile(cfg.LogPath)
	if n := strings.Count(string(data), `"log":"run\n"`); n != 3 {
		t.Errorf("%d runs logged, want 3:\n%s", n, data)
	}
}

// TestRestartOnFailureSuccess: on-failure does not restart a process
// that exits 0.
func TestRestartOnFailureSuccess(t *testing.T) {
	cfg := config(t, nil, "true")
	cfg.Restart = shim.RestartPolicy{Name: "on-failure"}
	c := mustLaunch(t, cfg)
	if _, err := c.c.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if st := c.waitFinal(); st.RestartCount != 0 || st.ExitCode != 0 {
		t.Errorf("state %+v", st)
	}
}

// TestRestartAlways: always restarts a process that exits 0, each exit
// ends the attaches and waits of its run, and Stop ends it for good.
func TestRestartAlways(t *testing.T) {
	cfg := config(t, nil, "sh", "-c", "echo run; sleep 0.2")
	cfg.Restart = shim.RestartPolicy{Name: "always"}
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	var out buffer
	r := <-c.attachStart(ctx, shim.AttachOptions{Stdout: &out})
	if r.err != nil || r.exit.Code != 0 || out.String() != "run\n" {
		t.Fatalf("first run: %+v %q", r, out.String())
	}
	if e, err := c.c.Wait(ctx); err != nil || e.Code != 0 {
		t.Fatalf("wait for a restarted run: %+v %v", e, err)
	}
	c.waitState("restarts", 30*time.Second, func(st shim.State) bool {
		return st.RestartCount >= 3 && st.Status == shim.StatusRunning
	})
	if err := c.c.Stop(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	st := c.waitFinal()
	if !st.ManualStop || st.RestartCount < 3 {
		t.Errorf("state %+v", st)
	}
	// No restart followed the stop.
	time.Sleep(300 * time.Millisecond)
	if st2 := c.state(); st2.RestartCount != st.RestartCount || st2.Status != shim.StatusExited {
		t.Errorf("restarted after stop: %+v", st2)
	}
}

// TestKillCancelsRestart: as in Docker, `kill` with SIGKILL is a manual
// stop that no policy undoes.
func TestKillCancelsRestart(t *testing.T) {
	cfg := config(t, nil, "sleep", "100")
	cfg.Restart = shim.RestartPolicy{Name: "always"}
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.c.Kill(ctx, "KILL"); err != nil {
		t.Fatal(err)
	}
	if st := c.waitFinal(); st.RestartCount != 0 || st.ExitCode != 137 || !st.ManualStop {
		t.Errorf("state %+v", st)
	}
}

// TestKillOtherSignalRestarts: a signal other than the container's stop
// signal leaves the policy in force.
func TestKillOtherSignalRestarts(t *testing.T) {
	cfg := config(t, nil, "sh", "-c", "trap 'exit 9' USR1; while :; do sleep 0.1; done")
	cfg.Restart = shim.RestartPolicy{Name: "on-failure", MaxRetries: 1}
	cfg.StopSignal = "SIGTERM"
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the trap be set
	if err := c.c.Kill(ctx, "USR1"); err != nil {
		t.Fatal(err)
	}
	c.waitState("a restart", 30*time.Second, func(st shim.State) bool {
		return st.RestartCount == 1 && st.Status == shim.StatusRunning
	})
	if err := c.c.Stop(ctx, "KILL", 0); err != nil {
		t.Fatal(err)
	}
	if st := c.waitFinal(); st.RestartCount != 1 || st.ExitCode != 137 {
		t.Errorf("state %+v", st)
	}
}

// TestBackoffGrows: the delay between restarts starts at 100 ms and
// doubles, as Docker's does. Each run appends the time to a file.
func TestBackoffGrows(t *testing.T) {
	cfg := config(t, func(s *specs.Spec) { s.Root.Readonly = false },
		"sh", "-c", "cat /proc/uptime >> /stamps; exit 1")
	cfg.Restart = shim.RestartPolicy{Name: "on-failure", MaxRetries: 4}
	c := mustLaunch(t, cfg)
	if _, err := c.c.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if st := c.waitFinal(); st.RestartCount != 4 {
		t.Fatalf("state %+v", st)
	}
	data, err := os.ReadFile(filepath.Join(cfg.Bundle, "rootfs", "stamps"))
	if err != nil {
		t.Fatal(err)
	}
	var stamps []float64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f, err := strconv.ParseFloat(strings.Fields(line)[0], 64)
		if err != nil {
			t.Fatal(err)
		}
		stamps = append(stamps, f)
	}
	if len(stamps) != 5 {
		t.Fatalf("%d runs, want 5: %q", len(stamps), data)
	}
	var gaps []float64
	for i := 1; i < len(stamps); i++ {
		gaps = append(gaps, stamps[i]-stamps[i-1])
	}
	t.Logf("gaps between runs (s): %v", gaps)
	for i, g := range gaps {
		delay := 0.1 * float64(int(1)<<i)
		if g < delay-0.02 { // /proc/uptime counts in hundredths
			t.Errorf("gap %d = %.2fs, shorter than the %.1fs back-off", i, g, delay)
		}
	}
	if gaps[3] < gaps[0]+0.6 {
		t.Errorf("back-off did not grow: %v", gaps)
	}
}

// TestOOMKilled: a process killed by the OOM killer exits 137 with
// OOMKilled set.
func TestOOMKilled(t *testing.T) {
	limit := int64(16 << 20)
	cfg := config(t, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	}, "tail", "/dev/zero")
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if e := c.waitExit(ctx); e.Code != 137 || !e.OOMKilled {
		t.Errorf("exit %+v, want 137 and OOMKilled", e)
	}
	if st := c.waitFinal(); !st.OOMKilled {
		t.Errorf("state %+v", st)
	}
}

// TestPauseResume: pause freezes and is recorded; stop of a paused
// container thaws it so the signal lands.
func TestPauseResume(t *testing.T) {
	c := mustLaunch(t, config(t, nil, "sh", "-c", "trap 'exit 4' TERM; while :; do sleep 0.1; done"))
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.state(); st.Status != shim.StatusPaused {
		t.Errorf("status %q after pause", st.Status)
	}
	if err := c.c.Pause(ctx); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second pause: %v", err)
	}
	if err := c.c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.state(); st.Status != shim.StatusRunning {
		t.Errorf("status %q after resume", st.Status)
	}
	if err := c.c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.c.Stop(sctx, "", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := c.waitFinal(); st.ExitCode != 4 {
		t.Errorf("state %+v", st)
	}
}

// TestStopWhileRestarting: a stop during the back-off cancels the
// restart, and a Wait made meanwhile gets the final exit.
func TestStopWhileRestarting(t *testing.T) {
	cfg := config(t, nil, "sh", "-c", "exit 1")
	cfg.Restart = shim.RestartPolicy{Name: "always"}
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// From the fifth restart on, the back-off is 1.6 s or more.
	c.waitState("a long back-off", 30*time.Second, func(st shim.State) bool {
		return st.RestartCount >= 5 && st.Status == shim.StatusRestarting
	})
	waited := make(chan attachResult, 1)
	go func() {
		e, err := c.c.Wait(ctx)
		waited <- attachResult{e, err}
	}()
	time.Sleep(100 * time.Millisecond)
	if err := c.c.Stop(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	if r := <-waited; r.err != nil || r.exit.Code != 1 {
		t.Errorf("wait: %+v", r)
	}
	st := c.waitFinal()
	time.Sleep(200 * time.Millisecond)
	if st2 := c.state(); st2.RestartCount != st.RestartCount || !st2.ManualStop {
		t.Errorf("state %+v after %+v", st2, st)
	}
}
