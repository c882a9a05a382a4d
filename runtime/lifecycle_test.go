package runtime_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ociState is what `state` prints.
type ociState struct {
	OCIVersion string `json:"ociVersion"`
	ID         string `json:"id"`
	Pid        int    `json:"pid"`
	Status     string `json:"status"`
	Bundle     string `json:"bundle"`
}

// runDetached runs the runtime with its stdout and stderr going to a file
// (which the container's process inherits, unlike a pipe that would keep
// the caller waiting until the container exits). It returns the exit
// status and the file's path; the file keeps collecting the container's
// output.
func (r *rt) runDetached(args ...string) (int, string) {
	r.t.Helper()
	out, err := os.CreateTemp(r.t.TempDir(), "out")
	if err != nil {
		r.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(berthRuntime, append([]string{"--root", r.root}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		r.t.Fatalf("berth-runtime %v: timed out", args)
	}
	return cmd.ProcessState.ExitCode(), out.Name()
}

// create creates container id from bundle (extra flags before the id) and
// returns the path of the file that collects its output.
func (r *rt) create(bundle, id string, extra ...string) string {
	r.t.Helper()
	args := append(append([]string{"create", "--bundle", bundle}, extra...), id)
	code, out := r.runDetached(args...)
	if code != 0 {
		data, _ := os.ReadFile(out)
		r.t.Fatalf("create %s: exit %d: %s", id, code, data)
	}
	return out
}

// startNew creates and starts a busybox container running args; it
// returns the id and the bundle directory.
func (r *rt) startNew(edit func(*specs.Spec), args ...string) (string, string) {
	r.t.Helper()
	bundle := testenv.Bundle(r.t, edit, args...)
	cid := id(r.t)
	r.create(bundle, cid)
	r.must("start", cid)
	return cid, bundle
}

func (r *rt) state(cid string) ociState {
	r.t.Helper()
	var s ociState
	out := r.must("state", cid)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		r.t.Fatalf("state %s: %v: %q", cid, err, out)
	}
	return s
}

// waitStatus polls `state` until the container has status want.
func (r *rt) waitStatus(cid, want string) ociState {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := r.state(cid)
		if s.Status == want {
			return s
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("container %s: status %q, want %q", cid, s.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sleeper(args ...string) []string {
	if len(args) == 0 {
		return []string{"sleep", "1000"}
	}
	return args
}

func TestLifecycle(t *testing.T) {
	r := newRT(t)
	bundle := testenv.Bundle(t, func(s *specs.Spec) { s.Root.Readonly = false },
		"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.05; done")
	cid := id(t)
	r.create(bundle, cid)

	s := r.state(cid)
	if s.OCIVersion == "" || s.ID != cid || s.Status != "created" || s.Pid <= 0 || s.Bundle != bundle {
		t.Fatalf("state after create = %+v; want id %s, status created, pid > 0, bundle %s", s, cid, bundle)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(s.Pid)); err != nil {
		t.Fatalf("init pid %d: %v", s.Pid, err)
	}
	// Nothing runs before start.
	time.Sleep(200 * time.Millisecond)
	counter := filepath.Join(bundle, "rootfs", "tmp", "counter")
	if _, err := os.Stat(counter); err == nil {
		t.Fatalf("the process ran before start")
	}

	r.must("start", cid)
	if s := r.state(cid); s.Status != "running" {
		t.Fatalf("status after start = %q, want running", s.Status)
	}
	if res := r.run("start", cid); res.code == 0 {
		t.Errorf("second start succeeded")
	}
	read := func() int {
		data, _ := os.ReadFile(counter)
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	waitFor(t, "counter advances", func() bool { return read() > 2 })

	r.must("pause", cid)
	if s := r.state(cid); s.Status != "paused" {
		t.Fatalf("status after pause = %q, want paused", s.Status)
	}
	time.Sleep(100 * time.Millisecond)
	before := read()
	time.Sleep(500 * time.Millisecond)
	if after := read(); after != before {
		t.Errorf("counter advanced while paused: %d -> %d", before, after)
	}
	if res := r.run("pause", cid); res.code == 0 {
		t.Logf("pause of a paused container succeeded (runc fails it)")
	}

	r.must("resume", cid)
	if s := r.state(cid); s.Status != "running" {
		t.Fatalf("status after resume = %q, want running", s.Status)
	}
	before = read()
	waitFor(t, "counter advances after resume", func() bool { return read() > before+2 })
	if res := r.run("resume", cid); res.code == 0 {
		t.Errorf("resume of a running container succeeded")
	}

	// delete of a running container fails without --force.
	if res := r.run("delete", cid); res.code != 1 || !strings.Contains(res.stderr, "not stopped") {
		t.Errorf("delete of a running container = exit %d, %q; want 1", res.code, res.stderr)
	}
	r.must("kill", cid, "KILL")
	r.waitStatus(cid, "stopped")
	if s := r.state(cid); s.Pid != 0 {
		t.Errorf("stopped container reports pid %d", s.Pid)
	}
	if res := r.run("kill", cid, "KILL"); res.code == 0 {
		t.Errorf("kill of a stopped container succeeded")
	}
	if res := r.run("start", cid); res.code == 0 {
		t.Errorf("start of a stopped container succeeded")
	}
	r.must("delete", cid)
	if res := r.run("state", cid); res.code != 1 {
		t.Errorf("state after delete = exit %d, want 1", res.code)
	}
	if _, err := os.Stat(filepath.Join(r.root, cid)); err == nil {
		t.Errorf("state dir left after delete")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKillSignals(t *testing.T) {
	r := newRT(t)
	trap := []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"}
	for _, tc := range []struct {
		name string
		args []string
		kill []string
	}{
		{"default SIGTERM", trap, nil},
		{"TERM by name", trap, []string{"SIGTERM"}},
		{"KILL", sleeper(), []string{"KILL"}},
		{"9", sleeper(), []string{"9"}},
		{"all KILL", []string{"sh", "-c", "sleep 1000 & sleep 1000 & wait"}, []string{"--all", "KILL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rt{t: t, root: r.root}
			cid, _ := r.startNew(nil, tc.args...)
			time.Sleep(200 * time.Millisecond) // let the trap be set
			args := []string{"kill"}
			if len(tc.kill) > 0 && tc.kill[0] == "--all" {
				args = append(args, "--all", cid, tc.kill[1])
			} else {
				args = append(append(args, cid), tc.kill...)
			}
			r.must(args...)
			r.waitStatus(cid, "stopped")
			r.must("delete", cid)
		})
	}
	if res := r.run("kill", "nosuch"); res.code != 1 {
		t.Errorf("kill of a missing container = exit %d", res.code)
	}
	cid, _ := r.startNew(nil, sleeper()...)
	if res := r.run("kill", cid, "NOSUCHSIG"); res.code != 1 {
		t.Errorf("kill with a bad signal = exit %d", res.code)
	}
	// kill of a created container works as well.
	b := testenv.Bundle(t, nil, sleeper()...)
	created := id(t)
	r.create(b, created)
	r.must("kill", created, "KILL")
	r.waitStatus(created, "stopped")
	r.must("delete", created)
}

func TestDelete(t *testing.T) {
	r := newRT(t)
	cid, _ := r.startNew(nil, sleeper()...)
	if res := r.run("delete", cid); res.code != 1 {
		t.Errorf("delete running = exit %d, want 1", res.code)
	}
	pid := r.state(cid).Pid
	r.must("delete", "--force", cid)
	if res := r.run("state", cid); res.code == 0 {
		t.Errorf("state after delete --force succeeded")
	}
	waitFor(t, "init gone", func() bool {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(data), ") Z")
	})
	if res := r.run("delete", "--force", "nosuch"); res.code != 0 {
		t.Errorf("delete --force of a missing container = exit %d (%s), want 0", res.code, res.stderr)
	}
	if res := r.run("delete", "nosuch"); res.code != 1 {
		t.Errorf("delete of a missing container = exit %d, want 1", res.code)
	}
	// A created container can be deleted without --force.
	b := testenv.Bundle(t, nil, sleeper()...)
	created := id(t)
	r.create(b, created)
	pid = r.state(created).Pid
	r.must("delete", created)
	waitFor(t, "created init gone", func() bool {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(data), ") Z")
	})
	// A paused container goes with --force.
	paused, _ := r.startNew(nil, sleeper()...)
	r.must("pause", paused)
	r.must("delete", "-f", paused)
	if out := r.must("list", "-q"); out != "" {
		t.Errorf("list after deletes = %q", out)
	}
}

func TestListAndPs(t *testing.T) {
	r := newRT(t)
	if out := r.must("list", "-q"); out != "" {
		t.Errorf("empty list -q = %q", out)
	}
	cid, bundle := r.startNew(nil, sleeper()...)
	out := r.must("list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "ID PID STATUS BUNDLE CREATED OWNER" {
		t.Fatalf("list =\n%s", out)
	}
	f := strings.Fields(lines[1])
	pid := r.state(cid).Pid
	if len(f) != 6 || f[0] != cid || f[1] != strconv.Itoa(pid) || f[2] != "running" || f[3] != bundle || f[5] != "root" {
		t.Errorf("list row = %q", lines[1])
	}
	var list []ociState
	if err := json.Unmarshal([]byte(r.must("list", "--format", "json")), &list); err != nil || len(list) != 1 || list[0].ID != cid || list[0].Status != "running" || list[0].Pid != pid {
		t.Errorf("list --format json = %+v, %v", list, err)
	}
	if out := r.must("list", "-q"); out != cid+"\n" {
		t.Errorf("list -q = %q", out)
	}

	var pids []int
	if err := json.Unmarshal([]byte(r.must("ps", "--format", "json", cid)), &pids); err != nil || len(pids) != 1 || pids[0] != pid {
		t.Errorf("ps --format json = %v, %v; want [%d]", pids, err, pid)
	}
	out = r.must("ps", cid)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 || len(lines) != 2 || strings.Fields(lines[1])[col] != strconv.Itoa(pid) {
		t.Errorf("ps table =\n%s", out)
	}
	if res := r.run("ps", "nosuch"); res.code != 1 {
		t.Errorf("ps of a missing container = exit %d", res.code)
	}
}

func TestCreateIDInUse(t *testing.T) {
	r := newRT(t)
	b := testenv.Bundle(t, nil, sleeper()...)
	cid := id(t)
	r.create(b, cid)
	pid := r.state(cid).Pid
	res := r.run("create", "--bundle", b, cid)
	if res.code != 1 || !strings.Contains(res.stderr, "container with id exists") {
		t.Errorf("second create = exit %d, %q", res.code, res.stderr)
	}
	// The first container is untouched.
	if s := r.state(cid); s.Status != "created" || s.Pid != pid {
		t.Errorf("state after the failed create = %+v", s)
	}
}

func TestRunDetachPidFile(t *testing.T) {
	r := newRT(t)
	b := testenv.Bundle(t, nil, sleeper()...)
	cid := id(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	code, out := r.runDetached("run", "--detach", "--pid-file", pidFile, "--bundle", b, cid)
	if code != 0 {
		data, _ := os.ReadFile(out)
		t.Fatalf("run --detach: exit %d: %s", code, data)
	}
	s := r.state(cid)
	data, err := os.ReadFile(pidFile)
	if err != nil || string(data) != strconv.Itoa(s.Pid) || s.Status != "running" {
		t.Errorf("pid file = %q, %v; state %+v", data, err, s)
	}
	// create --pid-file too.
	b2 := testenv.Bundle(t, nil, sleeper()...)
	c2 := id(t)
	pf2 := filepath.Join(t.TempDir(), "pid2")
	r.create(b2, c2, "--pid-file", pf2)
	if data, _ := os.ReadFile(pf2); string(data) != strconv.Itoa(r.state(c2).Pid) {
		t.Errorf("create pid file = %q", data)
	}
}

func TestEventsStats(t *testing.T) {
	r := newRT(t)
	cid, _ := r.startNew(nil, sleeper()...)
	out := r.must("events", "--stats", cid)
	var ev struct {
		Type string                     `json:"type"`
		ID   string                     `json:"id"`
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events --stats: %v: %q", err, out)
	}
	if ev.Type != "stats" || ev.ID != cid {
		t.Errorf("events --stats = %s", out)
	}
	for _, k := range []string{"memory", "cpu", "pids"} {
		if _, ok := ev.Data[k]; !ok {
			t.Errorf("events --stats data lacks %q: %s", k, out)
		}
	}
	var pids struct {
		Current uint64 `json:"current"`
	}
	json.Unmarshal(ev.Data["pids"], &pids)
	if pids.Current != 1 {
		t.Errorf("pids.current = %d, want 1: %s", pids.Current, ev.Data["pids"])
	}
	if res := r.run("events", "--stats", "nosuch"); res.code != 1 {
		t.Errorf("events of a missing container = exit %d", res.code)
	}
}

func TestUpdate(t *testing.T) {
	r := newRT(t)
	cid, _ := r.startNew(nil, sleeper()...)
	limit := func(file string) string {
		res := r.run("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/memory/"+file+" 2>/dev/null || cat /sys/fs/cgroup/"+file)
		return strings.TrimSpace(res.stdout)
	}
	r.must("update", "--memory", "64m", cid)
	if got := limit("memory.limit_in_bytes"); got != "67108864" && limit("memory.max") != "67108864" {
		t.Errorf("memory limit inside after update --memory 64m = %q", got)
	}
	res := filepath.Join(t.TempDir(), "res.json")
	os.WriteFile(res, []byte(`{"memory":{"limit":33554432},"pids":{"limit":42}}`), 0o644)
	r.must("update", "--resources", res, cid)
	if got := limit("memory.limit_in_bytes"); got != "33554432" && limit("memory.max") != "33554432" {
		t.Errorf("memory limit inside after update --resources = %q", got)
	}
	out := r.run("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
	if strings.TrimSpace(out.stdout) != "42" {
		t.Errorf("pids.max inside = %q (%s)", out.stdout, out.stderr)
	}
	if res := r.run("update", "--memory", "lots", cid); res.code != 1 {
		t.Errorf("update --memory lots = exit %d", res.code)
	}
}

func TestFeatures(t *testing.T) {
	r := newRT(t)
	var f struct {
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
		Linux         struct {
			Namespaces []string `json:"namespaces"`
			Seccomp    struct {
				Enabled *bool    `json:"enabled"`
				Actions []string `json:"actions"`
			} `json:"seccomp"`
		} `json:"linux"`
	}
	out := r.must("features")
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("features: %v", err)
	}
	has := func(list []string, v string) bool {
		for _, s := range list {
			if s == v {
				return true
			}
		}
		return false
	}
	for _, ns := range []string{"pid", "mount", "network", "user", "cgroup", "ipc", "uts"} {
		if !has(f.Linux.Namespaces, ns) {
			t.Errorf("features namespaces lack %s: %v", ns, f.Linux.Namespaces)
		}
	}
	for _, h := range []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} {
		if !has(f.Hooks, h) {
			t.Errorf("features hooks lack %s", h)
		}
	}
	for _, a := range []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL"} {
		if !has(f.Linux.Seccomp.Actions, a) {
			t.Errorf("features seccomp actions lack %s: %v", a, f.Linux.Seccomp.Actions)
		}
	}
	if f.OCIVersionMax == "" || f.Linux.Seccomp.Enabled == nil || !*f.Linux.Seccomp.Enabled {
		t.Errorf("features = %s", out)
	}
}

func TestSpecCommand(t *testing.T) {
	r := newRT(t)
	dir := t.TempDir()
	r.must("spec", "--bundle", dir)
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("spec wrote bad JSON: %v", err)
	}
	if s.Root == nil || s.Root.Path != "rootfs" || s.Process == nil {
		t.Fatalf("spec = %s", data)
	}
	if res := r.run("spec", "--bundle", dir); res.code != 1 || !strings.Contains(res.stderr, "exists") {
		t.Errorf("spec over an existing config.json = exit %d, %q", res.code, res.stderr)
	}
	testenv.Rootfs(t, filepath.Join(dir, "rootfs"))
	s.Process.Terminal = false
	s.Process.Args = []string{"sh", "-c", "echo from-spec; hostname"}
	testenv.WriteSpec(t, dir, &s)
	res := r.run("run", "--bundle", dir, id(t))
	if res.code != 0 || !strings.HasPrefix(res.stdout, "from-spec\n") {
		t.Errorf("run of the spec bundle = exit %d, %q, %q", res.code, res.stdout, res.stderr)
	}
	// Run from within the bundle directory, without --bundle.
	cmd := exec.Command(berthRuntime, "--root", r.root, "run", id(t))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "from-spec\n") {
		t.Errorf("run in the bundle dir: %v: %q", err, out)
	}
}

func TestLogJSON(t *testing.T) {
	r := newRT(t)
	logf := filepath.Join(t.TempDir(), "log.json")
	res := r.run("--log", logf, "--log-format", "json", "delete", "nosuch")
	if res.code != 1 {
		t.Fatalf("delete nosuch = exit %d", res.code)
	}
	if n := strings.Count(strings.TrimSpace(res.stderr), "\n"); n != 0 || res.stderr == "" {
		t.Errorf("stderr = %q, want one line", res.stderr)
	}
	f, err := os.Open(logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("log line %q: %v", sc.Text(), err)
			continue
		}
		for _, k := range []string{"level", "msg", "time"} {
			if _, ok := m[k]; !ok {
				t.Errorf("log line %q lacks %q", sc.Text(), k)
			}
		}
		if m["level"] != "error" || !strings.Contains(m["msg"].(string), "nosuch") {
			t.Errorf("log line %q", sc.Text())
		}
	}
	if n == 0 {
		t.Errorf("nothing logged")
	}
	if res := r.run("--log-format", "yaml", "list"); res.code != 1 {
		t.Errorf("--log-format yaml = exit %d", res.code)
	}
}

// TestBerthRuntimeSubcommand checks that `berth runtime <cmd>` and the
// berth-runtime link are the same program.
func TestBerthRuntimeSubcommand(t *testing.T) {
	r := newRT(t)
	bin, err := filepath.EvalSymlinks(berthRuntime)
	if err != nil {
		t.Fatal(err)
	}
	berth := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"runtime", "--root", r.root}, args...)...).Output()
		return string(out), err
	}
	viaBerth, err := berth("features")
	if err != nil || viaBerth != r.must("features") {
		t.Errorf("berth runtime features differs from berth-runtime features: %v", err)
	}
	cid, _ := r.startNew(nil, sleeper()...)
	out, err := berth("state", cid)
	if err != nil || out != r.must("state", cid) {
		t.Errorf("berth runtime state = %q, %v", out, err)
	}
	out, err = berth("list", "-q")
	if err != nil || out != cid+"\n" {
		t.Errorf("berth runtime list -q = %q, %v", out, err)
	}
	if _, err := berth("delete", "-f", cid); err != nil {
		t.Errorf("berth runtime delete -f: %v", err)
	}
	if out := r.must("list", "-q"); out != "" {
		t.Errorf("list after berth runtime delete = %q", out)
	}
	// A foreground run through the subcommand.
	b := testenv.Bundle(t, nil, "sh", "-c", "echo sub; exit 7")
	cmd := exec.Command(bin, "runtime", "--root", r.root, "run", "--bundle", b, id(t))
	got, err := cmd.Output()
	if string(got) != "sub\n" || cmd.ProcessState.ExitCode() != 7 {
		t.Errorf("berth runtime run = %q, exit %d (%v)", got, cmd.ProcessState.ExitCode(), err)
	}
}
