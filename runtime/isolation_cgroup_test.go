package runtime_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/runtime/cgroup"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgFile is the path inside the container of a cgroup interface file:
// under the controller's directory on v1, flat on v2.
func cgFile(v1Controller, v1File, v2File string) string {
	if cgroup.Unified() {
		return "/sys/fs/cgroup/" + v2File
	}
	return "/sys/fs/cgroup/" + v1Controller + "/" + v1File
}

func withResources(edit func(r *specs.LinuxResources)) func(*specs.Spec) {
	return func(s *specs.Spec) { edit(s.Linux.Resources) }
}

func TestIsolationCgroupLimits(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	v2 := cgroup.Unified()
	pick := func(v1, v2s string) string {
		if v2 {
			return v2s
		}
		return v1
	}
	cases := []isoCase{
		{
			name: "memory limit",
			edit: withResources(func(r *specs.LinuxResources) {
				r.Memory = &specs.LinuxMemory{Limit: i64(64 << 20)}
			}),
			args: sh(`cat ` + cgFile("memory", "memory.limit_in_bytes", "memory.max")),
			want: []string{`^67108864\n$`},
		},
		{
			name: "memory limit exceeded",
			edit: withResources(func(r *specs.LinuxResources) {
				r.Memory = &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(32 << 20)}
			}),
			// tail keeps the line it is reading: /dev/zero has none.
			args: []string{"tail", "/dev/zero"},
			code: 137,
		},
		{
			name: "pids limit",
			edit: withResources(func(r *specs.LinuxResources) { r.Pids = &specs.LinuxPids{Limit: i64(8)} }),
			args: sh(`cat ` + cgFile("pids", "pids.max", "pids.max") + `; ` +
				`for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 2 & done; echo started`),
			// sh gives up at the first fork refused.
			anyCode: true,
			want:    []string{`^8\n`, `can't fork: Resource temporarily unavailable`},
		},
		{
			name:    "pids unlimited",
			args:    sh(`for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1 & done; wait; echo started`),
			want:    []string{`(?m)^started$`},
			notWant: []string{`can't fork`},
		},
		{
			name: "cpu shares quota period",
			edit: withResources(func(r *specs.LinuxResources) {
				r.CPU = &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)}
			}),
			args: sh(pick(
				`cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us`,
				`cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpu.max`)),
			// v2: weight = 1 + (512-2)*9999/262142 = 20.
			want: []string{pick(`^512\n50000\n100000\n$`, `^20\n50000 100000\n$`)},
		},
		{
			name: "cpuset",
			edit: withResources(func(r *specs.LinuxResources) {
				r.CPU = &specs.LinuxCPU{Cpus: "0", Mems: "0"}
			}),
			args: sh(`cat ` + cgFile("cpuset", "cpuset.cpus", "cpuset.cpus") + ` ` + cgFile("cpuset", "cpuset.mems", "cpuset.mems") +
				`; grep -E '^(Cpus|Mems)_allowed_list' /proc/self/status`),
			want: []string{`^0\n0\nCpus_allowed_list:\s+0\nMems_allowed_list:\s+0\n$`},
		},
		{
			name: "cgroup mount is read-only",
			args: sh(`echo 1 > ` + cgFile("pids", "pids.max", "pids.max") + ` || echo refused`),
			want: []string{`Read-only file system\nrefused\n$`},
		},
	}
	runIsoCases(t, cases)
}

// TestIsolationPreserveFDs passes a pipe as the runtime's fd 3: with
// --preserve-fds 1 the container writes to it; without, the container
// must not have it. Either way nothing else of the runtime's leaks in.
func TestIsolationPreserveFDs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		preserve bool
	}{{"preserved", true}, {"not preserved", false}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRT(t)
			bundle := testenv.Bundle(t, nil, sh(`echo via-fd3 > /proc/self/fd/3; ls -l /proc/self/fd/`)...)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			args := []string{"--root", r.root, "run"}
			if tc.preserve {
				args = append(args, "--preserve-fds", "1")
			}
			cmd := exec.Command(berthRuntime, append(args, "--bundle", bundle, id(t))...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.ExtraFiles = []*os.File{pw}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatalf("run timed out: %s", out.String())
			}
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			piped, _ := io.ReadAll(pr)
			if tc.preserve != (string(piped) == "via-fd3\n") {
				t.Errorf("preserve %v: the pipe got %q", tc.preserve, piped)
			}
			// "lrwx------ 1 0 0 64 Jan 1 00:00 3 -> pipe:[123]"
			fds := map[string]string{}
			for _, m := range regexp.MustCompile(`(?m) (\d+) -> (.*)$`).FindAllStringSubmatch(out.String(), -1) {
				fds[m[1]] = m[2]
			}
			for _, fd := range []string{"0", "1", "2"} {
				if _, ok := fds[fd]; !ok {
					t.Errorf("fd %s is not open in the container:\n%s", fd, out.String())
				}
			}
			for fd, target := range fds {
				switch {
				case fd == "0" || fd == "1" || fd == "2":
				case fd == "3" && tc.preserve:
					if !strings.HasPrefix(target, "pipe:") {
						t.Errorf("preserved fd 3 -> %s, want the pipe", target)
					}
				case regexp.MustCompile(`^/proc/\d+/fd$`).MatchString(target):
					// ls's own directory
				default:
					t.Errorf("fd %s -> %s leaked into the container:\n%s", fd, target, out.String())
				}
			}
		})
	}
}
