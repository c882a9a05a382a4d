package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hookScript writes a host shell script that appends "<kind> <stdin>" to
// log and then runs extra (shell code) and returns its path.
func hookScript(t *testing.T, log, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook.sh")
	script := "#!/bin/sh\necho \"$1 $(cat)\" >> " + log + "\n" + extra + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

var hookEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}

func hook(path, kind string) specs.Hook {
	return specs.Hook{Path: path, Args: []string{path, kind}, Env: hookEnv}
}

type hookCall struct {
	kind  string
	state specs.State
	raw   string
}

func readHookLog(t *testing.T, log string) []hookCall {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var calls []hookCall
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		kind, js, _ := strings.Cut(l, " ")
		c := hookCall{kind: kind, raw: js}
		if err := json.Unmarshal([]byte(js), &c.state); err != nil {
			t.Errorf("%s hook got invalid state JSON %q: %v", kind, js, err)
		}
		calls = append(calls, c)
	}
	return calls
}

func TestHooksAllKinds(t *testing.T) {
	r := newRT(t)
	logDir := t.TempDir()
	log := filepath.Join(logDir, "hooks.log")
	host := hookScript(t, log, "")
	cid := id(t)
	b := testenv.Bundle(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hooklog", Type: "bind", Source: logDir, Options: []string{"bind", "rw"}})
		s.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{hook(host, "prestart")},
			CreateRuntime:   []specs.Hook{hook(host, "createRuntime")},
			CreateContainer: []specs.Hook{hook(host, "createContainer")},
			// Runs in the container: its path resolves in the rootfs.
			StartContainer: []specs.Hook{{Path: "/bin/starthook", Args: []string{"starthook", "startContainer"}, Env: []string{"PATH=/bin"}}},
			Poststart:      []specs.Hook{hook(host, "poststart")},
			Poststop:       []specs.Hook{hook(host, "poststop"), hook(host, "poststop2")},
		}
	}, sleeper()...)
	os.WriteFile(filepath.Join(b, "rootfs", "bin", "starthook"), []byte("#!/bin/sh\necho \"$1 $(cat)\" >> /hooklog/hooks.log\n"), 0o755)

	snap := snapshotHost(t)
	r.create(b, cid)
	pid := r.state(cid).Pid
	r.must("start", cid)
	r.must("kill", cid, "KILL")
	r.waitStatus(cid, "stopped")
	r.must("delete", cid)
	snap.checkNothingLeft(t, r, cid, b)

	calls := readHookLog(t, log)
	var kinds []string
	for _, c := range calls {
		kinds = append(kinds, c.kind)
	}
	want := []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", "poststop2"}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Fatalf("hook order = %v, want %v", kinds, want)
	}
	status := map[string]specs.ContainerState{
		"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
		"startContainer": "created", "poststart": "running", "poststop": "stopped", "poststop2": "stopped",
	}
	for _, c := range calls {
		s := c.state
		if s.ID != cid || s.Version == "" || s.Bundle != b {
			t.Errorf("%s hook state = %s; want id %s, bundle %s", c.kind, c.raw, cid, b)
		}
		if s.Status != status[c.kind] {
			t.Errorf("%s hook state status = %q, want %q", c.kind, s.Status, status[c.kind])
		}
		switch c.kind {
		case "prestart", "createRuntime", "poststart":
			if s.Pid != pid {
				t.Errorf("%s hook state pid = %d, want %d", c.kind, s.Pid, pid)
			}
		case "poststop", "poststop2":
		default:
			if s.Pid <= 0 {
				t.Errorf("%s hook state pid = %d", c.kind, s.Pid)
			}
		}
	}
}

// TestHooksRunInRun checks the hooks of a foreground `run`, whose
// poststop runs when the process exits.
func TestHooksRunInRun(t *testing.T) {
	r := newRT(t)
	log := filepath.Join(t.TempDir(), "hooks.log")
	host := hookScript(t, log, "")
	res := r.runBundle(func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			Prestart:  []specs.Hook{hook(host, "prestart")},
			Poststart: []specs.Hook{hook(host, "poststart")},
			Poststop:  []specs.Hook{hook(host, "poststop")},
		}
	}, "sh", "-c", "exit 4")
	if res.code != 4 {
		t.Errorf("run = exit %d, %s", res.code, res.stderr)
	}
	var kinds []string
	for _, c := range readHookLog(t, log) {
		kinds = append(kinds, c.kind)
	}
	if strings.Join(kinds, " ") != "prestart poststart poststop" {
		t.Errorf("hooks of run = %v", kinds)
	}
}

func TestHookFailures(t *testing.T) {
	r := newRT(t)
	log := filepath.Join(t.TempDir(), "hooks.log")
	fail := hookScript(t, log, "echo hook-says-no >&2; exit 3")
	slow := hookScript(t, log, "sleep 30")
	ok := hookScript(t, log, "")
	one := 1
	for _, tc := range []struct {
		name  string
		hooks specs.Hooks
		want  string
	}{
		{"prestart fails", specs.Hooks{Prestart: []specs.Hook{hook(fail, "prestart")}, Poststop: []specs.Hook{hook(ok, "poststop")}}, "hook-says-no"},
		{"createRuntime fails", specs.Hooks{CreateRuntime: []specs.Hook{hook(fail, "createRuntime")}}, "hook-says-no"},
		{"createContainer fails", specs.Hooks{CreateContainer: []specs.Hook{hook(fail, "createContainer")}}, "hook-says-no"},
		{"second prestart fails", specs.Hooks{Prestart: []specs.Hook{hook(ok, "prestart"), hook(fail, "prestart")}, CreateRuntime: []specs.Hook{hook(ok, "createRuntime")}}, "hook-says-no"},
		{"missing hook binary", specs.Hooks{Prestart: []specs.Hook{{Path: "/no/such/hook"}}}, "/no/such/hook"},
		{"timeout", specs.Hooks{Prestart: []specs.Hook{{Path: slow, Args: []string{slow, "prestart"}, Env: hookEnv, Timeout: &one}}}, "timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rt{t: t, root: r.root}
			os.Remove(log)
			hooks := tc.hooks
			b := testenv.Bundle(t, func(s *specs.Spec) { s.Hooks = &hooks }, sleeper()...)
			cid := id(t)
			snap := snapshotHost(t)
			start := time.Now()
			res := r.run("create", "--bundle", b, cid)
			if res.code != 1 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("create = exit %d, stderr %q; want exit 1 mentioning %q", res.code, res.stderr, tc.want)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("create took %v", d)
			}
			snap.checkNothingLeft(t, r, cid, b)
			for _, c := range readHookLog(t, log) {
				if c.kind == "createRuntime" && tc.name == "second prestart fails" {
					t.Errorf("createRuntime ran after a failed prestart")
				}
			}
		})
	}
}

func TestPoststopFailureDoesNotFailDelete(t *testing.T) {
	r := newRT(t)
	log := filepath.Join(t.TempDir(), "hooks.log")
	fail := hookScript(t, log, "exit 1")
	ok := hookScript(t, log, "")
	cid, _ := r.startNew(func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			Poststart: []specs.Hook{hook(fail, "poststart")},
			Poststop:  []specs.Hook{hook(fail, "poststop"), hook(ok, "poststop-after")},
		}
	}, sleeper()...)
	r.must("kill", cid, "KILL")
	r.waitStatus(cid, "stopped")
	res := r.run("delete", cid)
	if res.code != 0 {
		t.Errorf("delete with a failing poststop hook = exit %d, %s", res.code, res.stderr)
	}
	if out := r.must("list", "-q"); out != "" {
		t.Errorf("list after delete = %q", out)
	}
	var kinds []string
	for _, c := range readHookLog(t, log) {
		kinds = append(kinds, c.kind)
	}
	// runc warns and goes on with the remaining poststop hooks.
	if strings.Join(kinds, " ") != "poststart poststop poststop-after" {
		t.Errorf("hooks run = %v, want poststart poststop poststop-after", kinds)
	}
}
