package shim

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// healthLoop runs the health check of run r, started at startedAt, until
// ctx ends (the process exited).
func (s *shim) healthLoop(ctx context.Context, r *run, startedAt time.Time) {
	h := s.cfg.Health
	interval := orDefault(h.Interval, defaultProbeInterval)
	timeout := orDefault(h.Timeout, defaultProbeTimeout)
	startInterval := orDefault(h.StartInterval, defaultStartInterval)
	retries := h.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	var args []string
	switch h.Test[0] {
	case "CMD":
		args = h.Test[1:]
	case "CMD-SHELL":
		args = append([]string{"/bin/sh", "-c"}, h.Test[1:]...)
	default:
		// Docker's config validation rejects other forms; treat a bare
		// command line as CMD-SHELL would.
		args = append([]string{"/bin/sh", "-c"}, h.Test...)
	}
	if len(args) == 0 {
		return
	}
	for {
		d := interval
		s.mu.Lock()
		starting := s.st.Health != nil && s.st.Health.Status == HealthStarting
		s.mu.Unlock()
		if starting && time.Since(startedAt) < h.StartPeriod {
			d = startInterval
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.mu.Lock()
		paused := s.st.Status == StatusPaused
		s.mu.Unlock()
		if paused {
			continue
		}
		res := s.probe(ctx, args, timeout)
		if ctx.Err() != nil {
			return
		}
		s.recordHealth(r, res, startedAt, h.StartPeriod, retries)
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// probe runs one health check in the container.
func (s *shim) probe(ctx context.Context, args []string, timeout time.Duration) HealthResult {
	res := HealthResult{Start: time.Now().UTC(), ExitCode: -1}
	fail := func(err error) HealthResult {
		res.End = time.Now().UTC()
		res.Output = err.Error()
		return res
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return fail(err)
	}
	defer null.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer pr.Close()
	p := *s.process
	p.Args, p.Terminal, p.ConsoleSize = args, false, nil
	pid, err := s.rt.Exec(ctx, s.cfg.ID, &p, [3]*os.File{null, pw, pw}, nil)
	pw.Close()
	if err != nil {
		return fail(err)
	}
	exit := waitPid(pid)
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(pr, maxHealthOutput))
		io.Copy(io.Discard, pr) // children of the probe may write on
		out <- b
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	timedOut := false
	select {
	case ws := <-exit:
		res.ExitCode = exitCode(ws)
	case <-t.C:
		timedOut = true
		unix.Kill(pid, unix.SIGKILL) // still our unreaped child: the pid is its
		<-exit
	case <-ctx.Done():
		unix.Kill(pid, unix.SIGKILL)
		<-exit
	}
	// A probe's child may hold the pipe open: take what came.
	pr.SetReadDeadline(time.Now().Add(time.Second))
	output := <-out
	res.End = time.Now().UTC()
	if timedOut {
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
	} else {
		res.Output = string(output)
	}
	return res
}

// recordHealth records the result of a probe of run r as Docker does: a
// success makes the container healthy; failures count towards
// unhealthy, except while it is starting within its start period.
func (s *shim) recordHealth(r *run, res HealthResult, startedAt time.Time, startPeriod time.Duration, retries int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.st.Health
	if s.cur != r || h == nil {
		return
	}
	before := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > maxHealthLog {
		h.Log = append([]HealthResult(nil), h.Log[len(h.Log)-maxHealthLog:]...)
	}
	if res.ExitCode == 0 {
		h.Status = HealthHealthy
		h.FailingStreak = 0
	} else if h.Status != HealthStarting || res.Start.Sub(startedAt) >= startPeriod {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = HealthUnhealthy
		}
	}
	s.saveLocked()
	if h.Status != before {
		s.event("health_status: "+h.Status, nil)
	}
}
