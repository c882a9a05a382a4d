package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostSnapshot is what the host looked like before a failing command.
type hostSnapshot struct {
	mounts map[string]bool
}

func mountPoints(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			m[f[4]] = true
		}
	}
	return m
}

func snapshotHost(t *testing.T) *hostSnapshot {
	return &hostSnapshot{mounts: mountPoints(t)}
}

// cgroupDirs lists where container cid's cgroup (default path
// /berth/<cid>) would be in every hierarchy.
func cgroupDirs(cid string) []string {
	var dirs []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", e.Name(), "berth", cid))
	}
	return append(dirs, filepath.Join("/sys/fs/cgroup", "berth", cid))
}

// checkNothingLeft fails t if container cid (made from bundle) left a
// state directory, a cgroup, a mount or a process behind.
func (h *hostSnapshot) checkNothingLeft(t *testing.T, r *rt, cid, bundle string) {
	t.Helper()
	if cid == "" || cid == ".." || strings.Contains(cid, "/") {
		return // not a name: nothing could be made under it
	}
	if _, err := os.Lstat(filepath.Join(r.root, cid)); err == nil {
		t.Errorf("state directory %s left behind", filepath.Join(r.root, cid))
	}
	if out := r.must("list", "-q"); strings.Contains(out, cid) {
		t.Errorf("list shows %s", cid)
	}
	for _, d := range cgroupDirs(cid) {
		if _, err := os.Lstat(d); err == nil {
			t.Errorf("cgroup %s left behind", d)
		}
	}
	// Mounts of this test's making only: other test binaries (the cli's
	// containers) mount meanwhile elsewhere under /tmp.
	mine := func(m string) bool {
		if bundle != "" && (strings.HasPrefix(m, bundle) || strings.Contains(m, cid)) {
			return true
		}
		return strings.HasPrefix(m, filepath.Dir(r.root)+"/")
	}
	for m := range mountPoints(t) {
		if !h.mounts[m] && mine(m) {
			t.Errorf("mount %s left behind", m)
		}
	}
	if bundle == "" {
		return
	}
	// Processes: anything whose root or cwd lies in the bundle, or that
	// sits in the container's cgroup. Give a dying init a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := leftoverProcs(cid, bundle)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left behind: %v", left)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func leftoverProcs(cid, bundle string) []string {
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		p := "/proc/" + e.Name()
		stat, _ := os.ReadFile(p + "/stat")
		if strings.Contains(string(stat), ") Z ") {
			continue
		}
		root, _ := os.Readlink(p + "/root")
		cwd, _ := os.Readlink(p + "/cwd")
		cg, _ := os.ReadFile(p + "/cgroup")
		if strings.HasPrefix(root, bundle) || strings.HasPrefix(cwd, bundle) || strings.Contains(string(cg), "/berth/"+cid+"\n") {
			cmd, _ := os.ReadFile(p + "/cmdline")
			left = append(left, e.Name()+":"+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return left
}

// failsCleanly runs args, which must fail with exit 1 and one line on
// stderr, and leave nothing behind.
func (r *rt) failsCleanly(cid, bundle, want string, args ...string) {
	r.t.Helper()
	snap := snapshotHost(r.t)
	res := r.run(args...)
	if res.code != 1 {
		r.t.Errorf("%v = exit %d; want 1\nstdout: %s\nstderr: %s", args, res.code, res.stdout, res.stderr)
	}
	if lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n"); len(lines) != 1 || lines[0] == "" || !strings.HasSuffix(res.stderr, "\n") {
		r.t.Errorf("%v: stderr = %q; want exactly one line", args, res.stderr)
	}
	if want != "" && !strings.Contains(res.stderr, want) {
		r.t.Errorf("%v: stderr = %q; want it to mention %q", args, res.stderr, want)
	}
	snap.checkNothingLeft(r.t, r, cid, bundle)
}

func TestBadBundles(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, bundle string, s *specs.Spec) // s nil: edit wrote config.json itself
		args []string
		want string
	}{
		{"malformed config.json", func(t *testing.T, b string, _ *specs.Spec) {
			os.WriteFile(filepath.Join(b, "config.json"), []byte(`{"ociVersion": "1.0.2", "process": `), 0o644)
		}, nil, "config.json"},
		{"missing config.json", func(t *testing.T, b string, _ *specs.Spec) {
			os.Remove(filepath.Join(b, "config.json"))
		}, nil, "config.json"},
		{"missing rootfs", func(t *testing.T, b string, s *specs.Spec) { s.Root.Path = "nosuchrootfs" }, nil, "nosuchrootfs"},
		{"unknown namespace type", func(t *testing.T, b string, s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, nil, "bogus"},
		{"namespace path missing", func(t *testing.T, b string, s *specs.Spec) {
			for i := range s.Linux.Namespaces {
				if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = "/proc/nosuch/ns/net"
				}
			}
		}, nil, "/proc/nosuch/ns/net"},
		{"namespace path of the wrong type", func(t *testing.T, b string, s *specs.Spec) {
			for i := range s.Linux.Namespaces {
				if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = "/proc/self/ns/uts"
				}
			}
		}, nil, "net"},
		{"bind of a missing source", func(t *testing.T, b string, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/no/such/source", Options: []string{"rbind"}})
		}, nil, "/no/such/source"},
		{"unknown filesystem", func(t *testing.T, b string, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "nosuchfs", Source: "none"})
		}, nil, "nosuchfs"},
		{"unmapped uid", func(t *testing.T, b string, s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}}
			s.Process.User = specs.User{UID: 1000, GID: 0}
			for i := range s.Mounts {
				if s.Mounts[i].Type == "devpts" { // gid 5 is not mapped either
					s.Mounts[i].Options = []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
				}
			}
		}, nil, "1000"},
		{"missing binary", nil, []string{"/no/such/binary"}, "/no/such/binary"},
		{"cwd not absolute", func(t *testing.T, b string, s *specs.Spec) { s.Process.Cwd = "tmp" }, nil, "cwd"},
		{"rlimit soft above hard", func(t *testing.T, b string, s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 5}}
		}, nil, "RLIMIT_NOFILE"},
		{"missing cwd", func(t *testing.T, b string, s *specs.Spec) { s.Process.Cwd = "/no/such/dir" }, nil, "/no/such/dir"},
		{"apparmor profile without AppArmor", func(t *testing.T, b string, s *specs.Spec) {
			if data, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); len(data) > 0 && data[0] == 'Y' {
				t.Skip("AppArmor is enabled here")
			}
			s.Process.ApparmorProfile = "berth-test"
		}, nil, "AppArmor is not enabled"},
		{"the host's root as rootfs", func(t *testing.T, b string, s *specs.Spec) { s.Root.Path = "/" }, nil, "host's root"},
		{"masked paths without a mount namespace", func(t *testing.T, b string, s *specs.Spec) {
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.MountNamespace })
		}, nil, "private MNT namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rt{t: t, root: r.root}
			args := tc.args
			if args == nil {
				args = sleeper()
			}
			b := testenv.Bundle(t, nil, args...)
			if tc.edit != nil {
				s := testenv.Spec(args...)
				tc.edit(t, b, s)
				if _, err := os.Stat(filepath.Join(b, "config.json")); err == nil {
					data, _ := os.ReadFile(filepath.Join(b, "config.json"))
					var cur map[string]any
					if json.Unmarshal(data, &cur) == nil {
						testenv.WriteSpec(t, b, s)
					}
				}
			}
			cid := id(t)
			r.failsCleanly(cid, b, tc.want, "create", "--bundle", b, cid)
			cid = id(t)
			r.failsCleanly(cid, b, tc.want, "run", "--bundle", b, cid)
		})
	}
}

func TestBadIDsAndStates(t *testing.T) {
	r := newRT(t)
	b := testenv.Bundle(t, nil, sleeper()...)
	for _, bad := range []string{"../x", "..", "a/b", "x y", ""} {
		r.failsCleanly(bad, "", "", "create", "--bundle", b, bad)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(r.root), "x")); err == nil {
		t.Errorf("create ../x made %s", filepath.Join(filepath.Dir(r.root), "x"))
	}
	for _, cmd := range [][]string{{"state"}, {"start"}, {"kill"}, {"pause"}, {"resume"}, {"ps"}, {"exec"}, {"events", "--stats"}, {"update", "--memory", "64m"}} {
		args := append(append([]string{}, cmd...), "../x")
		if cmd[0] == "exec" {
			args = append(args, "true")
		}
		r.failsCleanly("x", "", "", args...)
	}

	stopped := id(t)
	b2 := testenv.Bundle(t, nil, "true")
	r.create(b2, stopped)
	r.must("start", stopped)
	r.waitStatus(stopped, "stopped")
	for _, args := range [][]string{
		{"exec", stopped, "true"},
		{"kill", stopped},
		{"kill", stopped, "KILL"},
		{"pause", stopped},
		{"resume", stopped},
		{"start", stopped},
		{"update", "--memory", "64m", stopped},
	} {
		res := r.run(args...)
		if res.code != 1 || strings.Count(res.stderr, "\n") != 1 {
			t.Errorf("%v on a stopped container = exit %d, stderr %q; want 1 and one line", args, res.code, res.stderr)
		}
	}
	if res := r.run("exec", stopped, "true"); !strings.Contains(res.stderr, "cannot exec in a stopped container") {
		t.Errorf("exec stopped: %q", res.stderr)
	}
	// The failed commands did not remove it: delete does.
	if s := r.state(stopped); s.Status != "stopped" {
		t.Errorf("state = %+v", s)
	}
	snap := snapshotHost(t)
	r.must("delete", stopped)
	snap.checkNothingLeft(t, r, stopped, b2)

	// Usage errors.
	for _, args := range [][]string{{"create"}, {"start"}, {"state", "a", "b"}, {"kill"}, {"nosuchcommand"}, {"list", "--format", "xml"}, {"ps", "--format", "xml", "x"}} {
		res := r.run(args...)
		if res.code == 0 {
			t.Errorf("%v = exit 0", args)
		}
	}
}
