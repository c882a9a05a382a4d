package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuGroup is a cgroup that counts the CPU time of the processes in it.
// BenchmarkContainers moves itself into an engine's group before it runs
// that engine's commands, so that the CLI, the monitors and helpers it
// starts (and docker's daemons, started from there) are counted; each
// container's own processes go to cgroups of their own and are not.
type cpuGroup struct {
	dir string
	v2  bool // cpu.stat's usage_usec rather than cpuacct.usage
}

// cpuGroups makes one cgroup per name under <cpuacct or cgroup2
// root>/berth-bench-<pid>, and at the end moves the process back where it
// was and removes them (once the processes counted in them are gone).
// With no cgroup file system to use it returns nil.
func cpuGroups(b *testing.B, names ...string) map[string]*cpuGroup {
	mnt, v2, err := cpuMount()
	if err != nil {
		b.Logf("no CPU accounting: %v", err)
		return nil
	}
	origin, err := selfCgroup(mnt, v2)
	if err != nil {
		b.Logf("no CPU accounting: %v", err)
		return nil
	}
	base := filepath.Join(mnt, fmt.Sprintf("berth-bench-%d", os.Getpid()))
	if err := os.Mkdir(base, 0o755); err != nil {
		b.Logf("no CPU accounting: %v", err)
		return nil
	}
	groups := map[string]*cpuGroup{}
	b.Cleanup(func() {
		(&cpuGroup{dir: origin}).enter()
		// The last monitors and daemons may take a moment to go.
		for i := 0; i < 50; i++ {
			for _, g := range groups {
				os.Remove(g.dir)
			}
			if os.Remove(base) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.Logf("cgroup %s not removed: processes left in it", base)
	})
	for _, name := range names {
		g := &cpuGroup{dir: filepath.Join(base, name), v2: v2}
		if err := os.Mkdir(g.dir, 0o755); err != nil {
			b.Logf("no CPU accounting: %v", err)
			return nil
		}
		groups[name] = g
	}
	return groups
}

// cpuMount finds the cgroup v1 hierarchy with the cpuacct controller, or
// else the cgroup2 file system.
func cpuMount() (mnt string, v2 bool, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	var cg2 string
	for s.Scan() {
		// ID parent dev root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(s.Text(), " - ")
		fields, super := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(super) < 3 || fields[3] != "/" {
			continue
		}
		switch super[0] {
		case "cgroup":
			for _, o := range strings.Split(super[2], ",") {
				if o == "cpuacct" {
					return fields[4], false, nil
				}
			}
		case "cgroup2":
			if cg2 == "" {
				cg2 = fields[4]
			}
		}
	}
	if cg2 != "" {
		return cg2, true, s.Err()
	}
	return "", false, fmt.Errorf("neither a cpuacct cgroup hierarchy nor cgroup2 is mounted")
}

// selfCgroup is the directory of the process's own cgroup in mnt.
func selfCgroup(mnt string, v2 bool) (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v2 && parts[0] == "0" && parts[1] == "" {
			return filepath.Join(mnt, parts[2]), nil
		}
		for _, c := range strings.Split(parts[1], ",") {
			if !v2 && c == "cpuacct" {
				return filepath.Join(mnt, parts[2]), nil
			}
		}
	}
	return "", fmt.Errorf("own cgroup not found in /proc/self/cgroup")
}

// enter moves the whole process (all its threads) into g.
func (g *cpuGroup) enter() error {
	if g == nil {
		return nil
	}
	return os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// usage is the CPU time used in g so far.
func (g *cpuGroup) usage() (time.Duration, error) {
	if g.v2 {
		data, err := os.ReadFile(filepath.Join(g.dir, "cpu.stat"))
		if err != nil {
			return 0, err
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				return time.Duration(us) * time.Microsecond, err
			}
		}
		return 0, fmt.Errorf("%s/cpu.stat: no usage_usec", g.dir)
	}
	data, err := os.ReadFile(filepath.Join(g.dir, "cpuacct.usage"))
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return time.Duration(ns), err
}

// cpuMeter adds up the CPU time g counts between begin and stop, and
// reports it per iteration as cpu-ns/op; with a nil group it does
// nothing.
type cpuMeter struct {
	g            *cpuGroup
	start, total time.Duration
}

func (m *cpuMeter) begin(b *testing.B) {
	if m.g == nil {
		return
	}
	u, err := m.g.usage()
	if err != nil {
		b.Fatal(err)
	}
	m.start = u
}

func (m *cpuMeter) stop(b *testing.B) {
	if m.g == nil {
		return
	}
	u, err := m.g.usage()
	if err != nil {
		b.Fatal(err)
	}
	m.total += u - m.start
}

func (m *cpuMeter) report(b *testing.B, iters int) {
	if m.g != nil && iters > 0 {
		b.ReportMetric(float64(m.total.Nanoseconds())/float64(iters), "cpu-ns/op")
	}
}

// memory is what a monitor process uses, in kB.
type memory struct {
	rss, anon, pss int
	cmd            string
}

// monitors finds the monitor of each running container (the parent of its
// init) and reads its memory from /proc.
func monitors(e *engineUnderTest, ids []string) ([]memory, error) {
	out, err := e.run(0, append([]string{"inspect", "-f", "{{.State.Pid}}"}, ids...)...)
	if err != nil {
		return nil, err
	}
	pids := strings.Fields(out)
	if len(pids) != len(ids) {
		return nil, fmt.Errorf("%s inspect: %d pids for %d containers", e.name, len(pids), len(ids))
	}
	var ms []memory
	for i, s := range pids {
		pid, _ := strconv.Atoi(s)
		if pid <= 0 {
			return nil, fmt.Errorf("%s: container %s is not running (pid %q)", e.name, ids[i], s)
		}
		st, err := procStatus(pid)
		if err != nil {
			return nil, err
		}
		ppid, _ := strconv.Atoi(st["PPid"])
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid))
		if err != nil {
			return nil, fmt.Errorf("%s: monitor of %s: %w", e.name, ids[i], err)
		}
		cmd := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		if !strings.Contains(cmd, e.monitor) {
			return nil, fmt.Errorf("%s: the parent of container %s's init is %q, not its monitor %q", e.name, ids[i], cmd, e.monitor)
		}
		m, err := procMemory(ppid)
		if err != nil {
			return nil, err
		}
		if len(cmd) > 60 {
			cmd = cmd[:60] + "..."
		}
		m.cmd = cmd
		ms = append(ms, m)
	}
	return ms, nil
}

// procStatus reads /proc/<pid>/status as a map of its fields.
func procStatus(pid int) (map[string]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	st := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			st[k] = strings.TrimSpace(v)
		}
	}
	return st, nil
}

// kB parses a "1234 kB" field.
func kB(s string) int {
	v, _ := strconv.Atoi(strings.TrimSuffix(s, " kB"))
	return v
}

// procMemory reads VmRSS and RssAnon from status and Pss from smaps_rollup.
func procMemory(pid int) (memory, error) {
	st, err := procStatus(pid)
	if err != nil {
		return memory{}, err
	}
	m := memory{rss: kB(st["VmRSS"]), anon: kB(st["RssAnon"])}
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Pss:"); ok {
			m.pss = kB(strings.TrimSpace(v))
		}
	}
	return m, s.Err()
}

// treeRSS is the VmRSS of pid and of its children (dockerd and the
// containerd it started), in kB.
func treeRSS(pid int) int {
	st, err := procStatus(pid)
	if err != nil {
		return 0
	}
	total := kB(st["VmRSS"])
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, c := range strings.Fields(string(kids)) {
		cpid, _ := strconv.Atoi(c)
		if st, err := procStatus(cpid); err == nil && st["Name"] != "containerd-shim" {
			total += kB(st["VmRSS"])
		}
	}
	return total
}
