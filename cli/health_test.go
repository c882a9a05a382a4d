package cli

import (
	"strings"
	"testing"
)

// A health check through the command line: starting, unhealthy after its
// retries, healthy once the check passes; ps shows it and filters on it,
// inspect has Docker's State.Health.
func TestHealthCheckCLI(t *testing.T) {
	h := newHost(t)
	id := strings.TrimSpace(h.ok("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok",
		"--health-interval", "200ms", "--health-retries", "2", "busybox", "sleep", "1000"))
	status := func() string { return h.ok("ps", "--format", "{{.Status}}", "--filter", "name=hc") }
	if s := status(); !strings.HasPrefix(s, "Up ") || !strings.HasSuffix(s, " (health: starting)\n") {
		t.Errorf("ps at first: %q", s)
	}
	waitFor(t, func() bool { return strings.HasSuffix(status(), " (unhealthy)\n") })
	health := h.state("hc")["Health"].(map[string]any)
	log := health["Log"].([]any)
	if health["Status"] != "unhealthy" || health["FailingStreak"].(float64) < 2 || len(log) < 2 {
		t.Fatalf("unhealthy: %v", health)
	}
	last := log[len(log)-1].(map[string]any)
	if last["ExitCode"] != 1.0 || last["Start"] == "" || last["End"] == "" {
		t.Errorf("failed check: %v", last)
	}
	if out := h.ok("ps", "-q", "--no-trunc", "--filter", "health=unhealthy"); out != id+"\n" {
		t.Errorf("filter health=unhealthy: %q", out)
	}

	h.ok("exec", "hc", "touch", "/tmp/ok")
	waitFor(t, func() bool { return strings.HasSuffix(status(), " (healthy)\n") })
	health = h.state("hc")["Health"].(map[string]any)
	log = health["Log"].([]any)
	if health["Status"] != "healthy" || health["FailingStreak"] != 0.0 || len(log) == 0 || len(log) > 5 {
		t.Fatalf("healthy: %v", health)
	}
	if last := log[len(log)-1].(map[string]any); last["ExitCode"] != 0.0 {
		t.Errorf("passing check: %v", last)
	}
	if out := h.ok("ps", "-q", "--no-trunc", "--filter", "health=healthy"); out != id+"\n" {
		t.Errorf("filter health=healthy: %q", out)
	}
	// Healthy again → unhealthy again when the check starts failing.
	h.ok("exec", "hc", "rm", "/tmp/ok")
	waitFor(t, func() bool { return strings.HasSuffix(status(), " (unhealthy)\n") })
	// A container without a check has no Health, and none in ps.
	h.ok("run", "-d", "--name", "plain", "busybox", "sleep", "1000")
	if st := h.state("plain"); st["Health"] != nil {
		t.Errorf("Health without a check: %v", st["Health"])
	}
	if s := h.ok("ps", "--format", "{{.Status}}", "--filter", "name=plain"); strings.Contains(s, "health") {
		t.Errorf("ps without a check: %q", s)
	}
}

// on-failure:2 restarts a failing command twice, then leaves it exited.
func TestRestartOnFailureCLI(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "rf", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1")
	waitFor(t, func() bool {
		c := h.inspect("rf")
		return c["RestartCount"] == 2.0 && c["State"].(map[string]any)["Status"] == "exited"
	})
	c := h.inspect("rf")
	st := c["State"].(map[string]any)
	if st["ExitCode"] != 1.0 || st["Running"] != false || st["Restarting"] != false {
		t.Errorf("final state: %v", st)
	}
	if hc := c["HostConfig"].(map[string]any)["RestartPolicy"].(map[string]any); hc["Name"] != "on-failure" || hc["MaximumRetryCount"] != 2.0 {
		t.Errorf("policy: %v", hc)
	}
	if logs := h.ok("logs", "rf"); logs != "run\nrun\nrun\n" {
		t.Errorf("three runs expected: %q", logs)
	}
	if ps := h.ok("ps", "-a", "--format", "{{.Status}}", "--filter", "name=rf"); !strings.HasPrefix(ps, "Exited (1) ") {
		t.Errorf("ps: %q", ps)
	}
	// A success is no failure: no restart.
	h.ok("run", "-d", "--name", "ok", "--restart", "on-failure:2", "busybox", "true")
	waitFor(t, func() bool { return h.state("ok")["Status"] == "exited" })
	if c := h.inspect("ok"); c["RestartCount"] != 0.0 {
		t.Errorf("restarted after exit 0: %v", c["RestartCount"])
	}
}

// always restarts whatever the exit, until stop; the count grows.
func TestRestartAlwaysCLI(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "ra", "--restart", "always", "busybox", "sh", "-c", "sleep 0.1; exit 0")
	waitFor(t, func() bool { return h.inspect("ra")["RestartCount"].(float64) >= 2 })
	h.ok("stop", "ra")
	c := h.inspect("ra")
	st := c["State"].(map[string]any)
	if st["Status"] != "exited" || st["Restarting"] != false {
		t.Fatalf("after stop: %v", st)
	}
	n := c["RestartCount"]
	if ps := h.ok("ps", "-q"); ps != "" {
		t.Errorf("running after stop: %q", ps)
	}
	if c := h.inspect("ra"); c["RestartCount"] != n || c["State"].(map[string]any)["Status"] != "exited" {
		t.Errorf("restarted after stop: %v", c["State"])
	}
}
