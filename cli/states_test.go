package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// zeroTime is how Docker shows a time that never came.
const zeroTime = "0001-01-01T00:00:00Z"

// ago is units.HumanDuration's "less than a minute ago".
const ago = `(Less than a second|1 second|\d+ seconds) ago`

// stateWant is what a test expects of inspect's State and ps's STATUS.
type stateWant struct {
	status            string // State.Status and ps's {{.State}}
	running, paused   bool
	restarting, oom   bool
	exitCode          int
	errorHas          string // "" for no error
	started, finished bool   // whether StartedAt, FinishedAt are set
	ps                string // a regexp of ps's STATUS
}

// checkState checks the container's State, its ps line and, once it
// stopped, wait's output, against w.
func (h *host) checkState(ref string, w stateWant) {
	h.t.Helper()
	t := h.t
	st := h.state(ref)
	for k, v := range map[string]any{
		"Status": w.status, "Running": w.running, "Paused": w.paused, "Restarting": w.restarting,
		"OOMKilled": w.oom, "Dead": false, "ExitCode": float64(w.exitCode),
	} {
		if st[k] != v {
			t.Errorf("%s: State.%s = %v, want %v (%v)", ref, k, st[k], v, st)
		}
	}
	if e, _ := st["Error"].(string); w.errorHas == "" && e != "" || !strings.Contains(e, w.errorHas) {
		t.Errorf("%s: State.Error = %q, want %q", ref, e, w.errorHas)
	}
	pid := int(st["Pid"].(float64))
	if w.running && w.status != "restarting" {
		if pid <= 0 || syscall.Kill(pid, 0) != nil {
			t.Errorf("%s: State.Pid %d is no live process", ref, pid)
		}
	} else if pid != 0 {
		t.Errorf("%s: State.Pid = %d, want 0", ref, pid)
	}
	times := map[string]time.Time{}
	for k, set := range map[string]bool{"StartedAt": w.started, "FinishedAt": w.finished} {
		s, _ := st[k].(string)
		if !set {
			if s != zeroTime {
				t.Errorf("%s: State.%s = %q, want %q", ref, k, s, zeroTime)
			}
			continue
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !strings.HasSuffix(s, "Z") || time.Since(tm) > time.Minute || time.Until(tm) > time.Second {
			t.Errorf("%s: State.%s = %q: not an RFC 3339 UTC time of the last minute", ref, k, s)
		}
		times[k] = tm
	}
	if w.started && w.finished && times["FinishedAt"].Before(times["StartedAt"]) && !w.running {
		t.Errorf("%s: finished %v before it started %v", ref, times["FinishedAt"], times["StartedAt"])
	}
	id := h.inspect(ref)["Id"].(string)
	var state, status string
	for _, l := range strings.Split(h.ok("ps", "-a", "--no-trunc", "--format", "{{.ID}}|{{.State}}|{{.Status}}"), "\n") {
		if f := strings.Split(l, "|"); len(f) == 3 && f[0] == id {
			state, status = f[1], f[2]
		}
	}
	if state != w.status || !regexp.MustCompile("^"+w.ps+"$").MatchString(status) {
		t.Errorf("%s: ps shows %q %q, want %q and /%s/", ref, state, status, w.status, w.ps)
	}
	if !w.running {
		if out := h.ok("wait", ref); out != strconv.Itoa(w.exitCode)+"\n" {
			t.Errorf("%s: wait printed %q, want %d", ref, out, w.exitCode)
		}
	}
}

func exited(code int) stateWant {
	return stateWant{status: "exited", exitCode: code, started: true, finished: true,
		ps: `Exited \(` + strconv.Itoa(code) + `\) ` + ago}
}

var running = stateWant{status: "running", running: true, started: true, ps: `Up (Less than a second|1 second|\d+ seconds)`}

// waitState waits until the container's State.Status is status.
func (h *host) waitState(ref, status string) {
	h.t.Helper()
	waitFor(h.t, func() bool { return h.state(ref)["Status"] == status })
}

func TestStateExited(t *testing.T) {
	h := newHost(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"true"}, 0},
		{[]string{"sh", "-c", "exit 3"}, 3},
		{[]string{"sh", "-c", "kill -9 $$"}, 0}, // PID 1 cannot kill itself
		{[]string{"sh", "-c", "sh -c 'kill -TERM $$'; exit $?"}, 143},
	} {
		name := "c" + strconv.Itoa(tc.code)
		h.ok(append([]string{"run", "-d", "--name", name, "busybox"}, tc.args...)...)
		h.waitState(name, "exited")
		h.checkState(name, exited(tc.code))
		h.ok("rm", name)
	}
}

func TestStateKilled(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "kk", "busybox", "sleep", "1000")
	h.checkState("kk", running)
	// A wait under way gets the end too.
	waited := make(chan string, 1)
	go func() { out, _, _ := h.run("", "wait", "kk"); waited <- out }()
	time.Sleep(200 * time.Millisecond)
	h.ok("kill", "-s", "KILL", "kk")
	select {
	case out := <-waited:
		if out != "137\n" {
			t.Errorf("wait under way printed %q", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait under way did not return")
	}
	h.checkState("kk", exited(137))

	// SIGTERM: PID 1 of a container ignores it unless it handles it,
	// as in Docker; through --init the command dies of it.
	h.ok("run", "-d", "--name", "tt", "busybox", "sleep", "1000")
	h.ok("kill", "-s", "TERM", "tt")
	time.Sleep(300 * time.Millisecond)
	h.checkState("tt", running)
	// At once: docker-init passes on a signal even while it starts (it
	// once lost it to its Go runtime's start, or ended with status 2).
	h.ok("run", "-d", "--init", "--name", "ti", "busybox", "sleep", "1000")
	h.ok("kill", "-s", "TERM", "ti")
	h.waitState("ti", "exited")
	h.checkState("ti", exited(143))
	// stop escalates to SIGKILL after its timeout.
	h.ok("stop", "-t", "1", "tt")
	h.checkState("tt", exited(137))
}

func TestStateOOMKilled(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "hog", "--memory", "10m", "busybox", "sh", "-c", "x=a; while :; do x=$x$x; done")
	h.waitState("hog", "exited")
	w := exited(137)
	w.oom = true
	h.checkState("hog", w)
	// Within the limit, nothing is OOM-killed.
	h.ok("run", "-d", "--name", "fine", "--memory", "10m", "busybox", "sh", "-c", "x=$(head -c 1000000 /dev/zero | tr '\\0' a); exit 0")
	h.waitState("fine", "exited")
	h.checkState("fine", exited(0))
}

func TestStateCommandNotFound(t *testing.T) {
	h := newHost(t)
	_, errs, code := h.run("", "run", "-d", "--name", "nf", "busybox", "nosuchcommand")
	if code != 127 || !strings.Contains(errs, "executable file not found") {
		t.Fatalf("run -d: %d %q", code, errs)
	}
	h.checkState("nf", stateWant{status: "created", exitCode: 127, errorHas: `exec: "nosuchcommand": executable file not found in $PATH`, ps: "Created"})
	_, _, code = h.run("", "run", "--name", "np", "busybox", "/etc/passwd")
	if code != 126 {
		t.Fatalf("run not executable: %d", code)
	}
	h.checkState("np", stateWant{status: "created", exitCode: 126, errorHas: "permission denied", ps: "Created"})
	// A start that fails again keeps it created, with the error.
	if _, _, code := h.run("", "start", "nf"); code == 0 {
		t.Fatal("start of a missing command succeeded")
	}
	h.checkState("nf", stateWant{status: "created", exitCode: 127, errorHas: "executable file not found", ps: "Created"})
}

func TestStatePaused(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "pp", "busybox", "sleep", "1000")
	h.ok("pause", "pp")
	w := running
	w.status, w.paused, w.ps = "paused", true, w.ps+` \(Paused\)`
	h.checkState("pp", w)
	h.ok("unpause", "pp")
	h.checkState("pp", running)
}

// shimPid returns the pid of the container's shim, from its state file.
func (h *host) shimPid(id string) int {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.root, "containers", id, "state.json"))
	if err != nil {
		h.t.Fatal(err)
	}
	var st struct{ ShimPid int }
	if err := json.Unmarshal(b, &st); err != nil || st.ShimPid <= 0 {
		h.t.Fatalf("no shim pid in %s (%v)", b, err)
	}
	return st.ShimPid
}

// A container whose shim is SIGKILLed (the monitor crashed) is reported
// exited, as Docker does when containerd loses a shim: 137, its processes
// killed, its mounts and cgroups cleaned up; it can start again.
func TestStateShimKilled(t *testing.T) {
	h := newHost(t)
	base := h.snapshotCount()
	marker := sleepMarker()
	for _, paused := range []bool{false, true} {
		id := strings.TrimSpace(h.ok("run", "-d", "busybox", "sleep", marker))
		if paused {
			h.ok("pause", id)
		}
		waited := make(chan string, 1)
		go func() { out, _, _ := h.run("", "wait", id); waited <- out }()
		time.Sleep(200 * time.Millisecond)
		if err := syscall.Kill(h.shimPid(id), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case out := <-waited:
			if out != "137\n" {
				t.Errorf("wait under way printed %q", out)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("wait under way did not return")
		}
		h.checkState(id, exited(137))
		now := time.Now()
		dies := h.ok("events", "--since", "1h", "--until", strconv.FormatInt(now.Unix(), 10)+"."+fmt.Sprintf("%09d", now.Nanosecond()),
			"--filter", "container="+id, "--filter", "event=die", "--format", "{{.Actor.Attributes.exitCode}}")
		if dies != "137\n" {
			t.Errorf("paused=%v: die events of the settled container: %q", paused, dies)
		}
		// Nothing of it runs or stays mounted any more.
		h.checkClean(id, map[string]bool{id: true}, base, marker)
		for _, p := range procs() {
			if len(p.args) == 2 && p.args[0] == "sleep" && p.args[1] == marker {
				t.Fatalf("paused=%v: the container's process %d outlived its shim", paused, p.pid)
			}
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if bytes.Contains(mi, []byte(filepath.Join(h.runRoot, "containers", id))) {
			t.Fatalf("paused=%v: rootfs still mounted", paused)
		}
		h.ok("start", id)
		h.checkState(id, running)
		if out := h.ok("exec", id, "echo", "back"); out != "back\n" {
			t.Fatalf("exec after restart: %q", out)
		}
		h.ok("rm", "-f", id)
	}
	// A --rm container is removed, as its shim would have done.
	id := strings.TrimSpace(h.ok("run", "-d", "--rm", "busybox", "sleep", marker))
	if err := syscall.Kill(h.shimPid(id), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !strings.Contains(h.ok("ps", "-a", "--no-trunc"), id) })
	if _, errs, code := h.run("", "inspect", id); code == 0 || !strings.Contains(errs, "no such object") {
		t.Errorf("inspect of the removed --rm container: %d %q", code, errs)
	}
	h.checkClean("", map[string]bool{id: true}, base, marker)
}

func TestRestartPolicies(t *testing.T) {
	h := newHost(t)
	// on-failure:2 restarts twice, then stays exited.
	h.ok("run", "-d", "--name", "of", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
	waitFor(t, func() bool {
		i := h.inspect("of")
		return i["RestartCount"] == 2.0 && i["State"].(map[string]any)["Status"] == "exited"
	})
	time.Sleep(time.Second) // a third would come after 400 ms
	if n := h.inspect("of")["RestartCount"]; n != 2.0 {
		t.Errorf("on-failure:2 restarted %v times", n)
	}
	h.checkState("of", exited(1))

	// on-failure does not restart a success.
	h.ok("run", "-d", "--name", "ok", "--restart", "on-failure", "busybox", "true")
	h.waitState("ok", "exited")
	time.Sleep(500 * time.Millisecond)
	if n := h.inspect("ok")["RestartCount"]; n != 0.0 {
		t.Errorf("on-failure restarted a success %v times", n)
	}

	// always restarts what exits, and shows it restarting in between...
	h.ok("run", "-d", "--name", "al", "--restart", "always", "busybox", "sh", "-c", "sleep 0.3; exit 2")
	sawRestarting := false
	waitFor(t, func() bool {
		i := h.inspect("al")
		if i["State"].(map[string]any)["Status"] == "restarting" {
			sawRestarting = true
			if ps := h.ok("ps", "-a", "--filter", "name=al", "--format", "{{.Status}}"); !regexp.MustCompile(`^(Restarting \(2\) ` + ago + `|Exited \(2\) ` + ago + `|Up .*)\n$`).MatchString(ps) {
				t.Errorf("ps of a restarting container: %q", ps)
			}
		}
		return i["RestartCount"].(float64) >= 3
	})
	if !sawRestarting {
		t.Log("never caught it restarting")
	}
	// ...but not after a stop: it stays stopped.
	h.ok("stop", "-t", "1", "al")
	st := h.state("al")
	if st["Status"] != "exited" {
		t.Fatalf("after stop: %v", st)
	}
	n := h.inspect("al")["RestartCount"]
	time.Sleep(2 * time.Second)
	if i := h.inspect("al"); i["State"].(map[string]any)["Status"] != "exited" || i["RestartCount"] != n {
		t.Errorf("always came back after stop: %v, restarts %v then %v", i["State"], n, i["RestartCount"])
	}

	// always with a process that runs: stop ends it for good too.
	h.ok("run", "-d", "--name", "al2", "--restart", "always", "busybox", "sleep", "1000")
	h.ok("stop", "-t", "1", "al2")
	time.Sleep(1500 * time.Millisecond)
	h.checkState("al2", exited(137))
	if n := h.inspect("al2")["RestartCount"]; n != 0.0 {
		t.Errorf("always restarted after stop: %v", n)
	}
	// and start brings it back with its policy.
	h.ok("start", "al2")
	h.checkState("al2", running)
}
