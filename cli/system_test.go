package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// crash does to every running container what a power cut does: its shim
// and its processes die at once, without recording anything, its rootfs
// mount goes, and the run root (a tmpfs) comes back empty.
func (h *host) crash() {
	h.t.Helper()
	ids := strings.Fields(h.ok("ps", "-q", "--no-trunc"))
	for _, id := range ids {
		var st struct{ Pid, ShimPid int }
		b, err := os.ReadFile(filepath.Join(h.root, "containers", id, "state.json"))
		if err != nil || json.Unmarshal(b, &st) != nil || st.ShimPid <= 0 || st.Pid <= 0 {
			h.t.Fatalf("state of %s: %s %v", id, b, err)
		}
		unix.Kill(st.ShimPid, unix.SIGKILL)
		unix.Kill(st.Pid, unix.SIGKILL) // the container's init: its pid namespace ends
		// A frozen (paused) process dies only once thawed.
		for _, f := range []string{"/sys/fs/cgroup/freezer/berth/" + id + "/freezer.state", "/sys/fs/cgroup/berth/" + id + "/cgroup.freeze"} {
			os.WriteFile(f, []byte(map[bool]string{true: "THAWED", false: "0"}[strings.HasSuffix(f, ".state")]), 0)
		}
		for _, pid := range []int{st.ShimPid, st.Pid} {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err != nil || strings.Contains(string(b), ") Z ") {
					break
				}
				if time.Now().After(deadline) {
					h.t.Fatalf("process %d of %s does not die", pid, id)
				}
			}
		}
		// Its cgroups end with the machine.
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + id)
		for _, d := range append(dirs, "/sys/fs/cgroup/berth/"+id) {
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				err := unix.Rmdir(d)
				if err == nil || errors.Is(err, unix.ENOENT) || time.Now().After(deadline) {
					break
				}
			}
		}
		rootfs := filepath.Join(h.runRoot, "containers", id, "rootfs")
		for unix.Unmount(rootfs, unix.MNT_DETACH) == nil {
		}
	}
	ents, err := os.ReadDir(h.runRoot)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(h.runRoot, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			h.t.Fatal(err)
		}
	}
}

// TestSystemBoot simulates a reboot, then checks that `system boot` brings
// back exactly the containers whose restart policy asks for it.
func TestSystemBoot(t *testing.T) {
	h := newHost(t)
	sleep := []string{"busybox", "sleep", "1000"}
	run := func(name string, args ...string) {
		h.ok(append(append([]string{"run", "-d", "--name", name}, args...), sleep...)...)
	}
	run("always1", "--restart", "always")
	run("always-stopped", "--restart", "always")
	h.ok("kill", "always-stopped")
	run("unless1", "--restart", "unless-stopped")
	run("unless-stopped", "--restart", "unless-stopped")
	h.ok("kill", "unless-stopped")
	run("onfail1", "--restart", "on-failure:3")
	run("onfail-stopped", "--restart", "on-failure")
	h.ok("kill", "onfail-stopped")
	h.ok("run", "--name", "onfail-ok", "--restart", "on-failure", "busybox", "true")
	run("norestart")
	h.ok("create", "--name", "created", "--restart", "always", "busybox", "true")
	run("autorm", "--rm")
	h.ok("run", "--name", "paused1", "-d", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	h.ok("pause", "paused1")

	h.crash()
	if out := h.ok("ps", "-q"); out != "" {
		t.Fatalf("running after the crash: %q", out)
	}
	out, errs, code := h.run("", "system", "boot")
	if want := "always1\nalways-stopped\nunless1\nonfail1\npaused1\n"; code != 0 || out != want || errs != "" {
		t.Fatalf("system boot: exit %d, out %q (want %q), err %q", code, out, want, errs)
	}
	for _, name := range []string{"always1", "always-stopped", "unless1", "onfail1", "paused1"} {
		if st := h.state(name); st["Status"] != "running" {
			t.Errorf("%s after boot: %v", name, st)
		}
		if out := h.ok("exec", name, "echo", "up"); out != "up\n" {
			t.Errorf("exec in %s: %q", name, out)
		}
	}
	// The crash is recorded as docker records it: exited (255).
	if st := h.state("norestart"); st["Status"] != "exited" || st["ExitCode"] != 255.0 || st["Running"] != false {
		t.Errorf("norestart: %v", st)
	}
	for name, code := range map[string]float64{"unless-stopped": 137, "onfail-stopped": 137, "onfail-ok": 0} {
		if st := h.state(name); st["Status"] != "exited" || st["ExitCode"] != code {
			t.Errorf("%s: %v", name, st)
		}
	}
	if st := h.state("created"); st["Status"] != "created" {
		t.Errorf("created: %v", st)
	}
	if _, errs, code := h.run("", "inspect", "autorm"); code == 0 || !strings.Contains(errs, "no such object") {
		t.Errorf("the --rm container survived: %d %q", code, errs)
	}
	// The stopped one without a policy starts again by hand.
	h.ok("start", "norestart")
	// Nothing more to do: a second boot starts nothing.
	if out := h.ok("system", "boot"); out != "" {
		t.Errorf("second boot: %q", out)
	}
}

// A container that cannot start is reported; the others still start.
func TestSystemBootFailure(t *testing.T) {
	h := newHost(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	h.ok("run", "-d", "--name", "bad", "--restart", "always", "--mount", "type=bind,src="+src+",dst=/host", "busybox", "sleep", "1000")
	h.ok("run", "-d", "--name", "good", "--restart", "always", "busybox", "sleep", "1000")
	h.crash()
	// The directory the container binds did not survive the reboot.
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	out, errs, code := h.run("", "system", "boot")
	if code != 1 || out != "good\n" || !strings.HasPrefix(errs, "Error response from daemon: bad: ") ||
		!strings.HasSuffix(errs, "\nError: failed to start containers: bad\n") {
		t.Fatalf("boot: exit %d, out %q, err %q", code, out, errs)
	}
	if st := h.state("bad"); st["Status"] != "exited" {
		t.Errorf("bad after a failed boot: %v", st)
	}
}
