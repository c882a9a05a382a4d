package shim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func writable(s *specs.Spec) { s.Root.Readonly = false }

// TestHealthTransitions: starting → healthy on the first success →
// unhealthy after Retries failures in a row.
func TestHealthTransitions(t *testing.T) {
	cfg := config(t, writable, "sh", "-c", "touch /ok; sleep 1; rm /ok; sleep 100")
	cfg.Health = &shim.Healthcheck{
		Test:     []string{"CMD-SHELL", "test -e /ok && echo fine"},
		Interval: 150 * time.Millisecond, Timeout: 5 * time.Second, Retries: 2,
	}
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st := c.state(); st.Health == nil || st.Health.Status != shim.HealthStarting {
		t.Fatalf("health at start: %+v", st.Health)
	}
	st := c.waitState("healthy", 30*time.Second, func(st shim.State) bool {
		return st.Health != nil && st.Health.Status == shim.HealthHealthy
	})
	last := st.Health.Log[len(st.Health.Log)-1]
	if last.ExitCode != 0 || last.Output != "fine\n" || last.End.Before(last.Start) {
		t.Errorf("healthy result %+v", last)
	}
	st = c.waitState("unhealthy", 30*time.Second, func(st shim.State) bool {
		return st.Health != nil && st.Health.Status == shim.HealthUnhealthy
	})
	if st.Health.FailingStreak != 2 || len(st.Health.Log) > 5 {
		t.Errorf("unhealthy: %+v", st.Health)
	}
	if last := st.Health.Log[len(st.Health.Log)-1]; last.ExitCode != 1 {
		t.Errorf("failed result %+v", last)
	}
	// The log keeps the last five.
	st = c.waitState("a full log", 30*time.Second, func(st shim.State) bool { return st.Health.FailingStreak >= 6 })
	if len(st.Health.Log) != 5 {
		t.Errorf("%d results kept, want 5", len(st.Health.Log))
	}
}

// TestHealthTimeout: a probe that outlives its timeout is killed and
// counts as a failure with exit code -1.
func TestHealthTimeout(t *testing.T) {
	cfg := config(t, nil, "sleep", "100")
	cfg.Health = &shim.Healthcheck{
		Test:     []string{"CMD", "sleep", "10"},
		Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, Retries: 1,
	}
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st := c.waitState("unhealthy", 30*time.Second, func(st shim.State) bool {
		return st.Health != nil && st.Health.Status == shim.HealthUnhealthy
	})
	r := st.Health.Log[0]
	if r.ExitCode != -1 || !strings.Contains(r.Output, "Health check exceeded timeout") {
		t.Errorf("result %+v", r)
	}
	if d := r.End.Sub(r.Start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("probe took %v, want about 300ms", d)
	}
}

// TestHealthStartPeriod: failures within the start period do not count.
func TestHealthStartPeriod(t *testing.T) {
	cfg := config(t, nil, "sleep", "100")
	cfg.Health = &shim.Healthcheck{
		Test:     []string{"CMD", "false"},
		Interval: 100 * time.Millisecond, StartInterval: 100 * time.Millisecond,
		StartPeriod: 1500 * time.Millisecond, Retries: 1,
	}
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st := c.waitState("probes", 30*time.Second, func(st shim.State) bool {
		return st.Health != nil && len(st.Health.Log) >= 2
	})
	if time.Since(st.StartedAt) < 1200*time.Millisecond && (st.Health.Status != shim.HealthStarting || st.Health.FailingStreak != 0) {
		t.Errorf("failure counted within the start period: %+v", st.Health)
	}
	st = c.waitState("unhealthy", 30*time.Second, func(st shim.State) bool {
		return st.Health.Status == shim.HealthUnhealthy
	})
	if d := st.Health.Log[len(st.Health.Log)-1].Start.Sub(st.StartedAt); d < 1500*time.Millisecond {
		t.Errorf("unhealthy %v after start, within the start period", d)
	}
}
