package cli

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stressDuration is how long TestStressRunExecRm loops:
// $BERTH_STRESS_SECONDS, else 5 s with -short, 20 s when $CI is set (the
// whole package stays quick), else the minute.
func stressDuration(t *testing.T) time.Duration {
	if v := os.Getenv("BERTH_STRESS_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("BERTH_STRESS_SECONDS=%q", v)
		}
		return time.Duration(n) * time.Second
	}
	switch {
	case testing.Short():
		return 5 * time.Second
	case os.Getenv("CI") != "":
		return 20 * time.Second
	}
	return time.Minute
}

var fullID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// sleepMarker is a sleep length no other test uses, so that the
// container processes of one test can be told from every other.
func sleepMarker() string { return strconv.Itoa(3_000_000 + rand.IntN(1_000_000)) }

// command is berth on h's roots, not started.
func (h *host) command(args ...string) *exec.Cmd {
	return exec.Command(berthBin(h.t), append([]string{"--root", h.root, "--runroot", h.runRoot}, args...)...)
}

// proc is one process of the host, by its command line.
type proc struct {
	pid  int
	args []string
}

func procs() []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		out = append(out, proc{pid, strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")})
	}
	return out
}

func (p proc) has(sub string) bool {
	return slices.ContainsFunc(p.args, func(a string) bool { return strings.Contains(a, sub) })
}

// isShim says whether p is the monitor of one of h's containers (its
// argument is the bundle under h's run root).
func (h *host) isShim(p proc) bool {
	return len(p.args) >= 3 && p.args[1] == "shim" && p.has(h.runRoot+"/")
}

// isCLI says whether p is a berth command on h's roots (a test's, or a
// shim's exit command).
func (h *host) isCLI(p proc) bool {
	return len(p.args) >= 3 && p.args[1] == "--root" && p.args[2] == h.root
}

// settle waits until no berth command on h's roots runs any more (the
// exit commands of --rm containers included) and every shim left watches
// a live container, so that what is on disk stays put.
func (h *host) settle() {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		busy := ""
		for _, p := range procs() {
			if h.isCLI(p) {
				busy = fmt.Sprintf("command %d %q", p.pid, p.args)
				break
			}
			if h.isShim(p) {
				id := filepath.Base(p.args[len(p.args)-1])
				b, err := os.ReadFile(filepath.Join(h.root, "containers", id, "state.json"))
				if err != nil || !regexp.MustCompile(`"status":"(running|created|paused)"`).Match(b) {
					busy = fmt.Sprintf("shim %d of %s: %s", p.pid, id, b)
					break
				}
			}
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("not settled after 30s: %s", busy)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// snapshotCount is the number of snapshot directories under h's root.
func (h *host) snapshotCount() int {
	ents, err := os.ReadDir(filepath.Join(h.root, "snapshots", "overlay", "snapshots"))
	if err != nil {
		h.t.Fatal(err)
	}
	return len(ents)
}

// residue lists what h's containers left behind but those of the one
// container keep (""): files of containers, names, bundles, runtime state
// and locks; mounts under the roots; the cgroups of the containers ids;
// snapshots beyond the image's (base of them); shims, berth commands and
// `sleep marker` processes.
func (h *host) residue(keep string, ids map[string]bool, base int, marker string) []string {
	var out []string
	for _, dir := range []string{
		filepath.Join(h.root, "containers"), filepath.Join(h.runRoot, "containers"),
		filepath.Join(h.runRoot, "runtime"), filepath.Join(h.runRoot, "locks"),
	} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if keep != "" && e.Name() == keep || e.Name() == "names" && strings.HasSuffix(dir, "locks") {
				continue
			}
			out = append(out, "entry "+filepath.Join(dir, e.Name()))
		}
	}
	ents, _ := os.ReadDir(filepath.Join(h.root, "names"))
	for _, e := range ents {
		if target, _ := os.Readlink(filepath.Join(h.root, "names", e.Name())); keep == "" || target != keep {
			out = append(out, "name "+e.Name()+" -> "+target)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (strings.HasPrefix(f[4], h.root+"/") || strings.HasPrefix(f[4], h.runRoot+"/")) && (keep == "" || !strings.Contains(f[4], keep)) {
			out = append(out, "mount "+f[4])
		}
	}
	for id := range ids {
		if id == keep {
			continue
		}
		for _, pat := range []string{"/sys/fs/cgroup/*/berth/" + id, "/sys/fs/cgroup/berth/" + id} {
			m, _ := filepath.Glob(pat)
			for _, p := range m {
				out = append(out, "cgroup "+p)
			}
		}
	}
	if keep != "" {
		base++
	}
	if n := h.snapshotCount(); n != base {
		out = append(out, fmt.Sprintf("%d snapshots, want %d", n, base))
	}
	for _, p := range procs() {
		switch {
		case (h.isShim(p) || h.isCLI(p)) && (keep == "" || !p.has(keep)):
			out = append(out, fmt.Sprintf("process %d %q", p.pid, p.args))
		case len(p.args) == 2 && p.args[0] == "sleep" && p.args[1] == marker:
			out = append(out, fmt.Sprintf("container process %d %q", p.pid, p.args))
		}
	}
	return out
}

// checkClean fails the test with what residue finds, once h has settled.
func (h *host) checkClean(keep string, ids map[string]bool, base int, marker string) {
	h.t.Helper()
	h.settle()
	if r := h.residue(keep, ids, base, marker); len(r) > 0 {
		h.t.Fatalf("left behind:\n%s", strings.Join(r, "\n"))
	}
}

// hold is the time a named container certainly held its name: from the
// end of its run to the start of its rm.
type hold struct {
	id         string
	start, end time.Time
}

// TestStressRunExecRm runs 20 loops of run -d / exec / rm -f at once, a
// quarter of them fighting over two names, while ps watches: every
// command must succeed (or, for a taken name, fail with docker's
// conflict), no two containers may ever share a name, ps may show no
// container nobody made, and nothing may be left at the end.
func TestStressRunExecRm(t *testing.T) {
	h := newHost(t)
	base := h.snapshotCount()
	marker := sleepMarker()
	const workers = 20
	names := []string{"stress-a", "stress-b"}
	deadline := time.Now().Add(stressDuration(t))

	var mu sync.Mutex
	made := map[string]bool{}  // IDs run -d printed
	shown := map[string]bool{} // IDs ps showed
	holds := map[string][]hold{}
	loops, conflicts, psRuns := 0, 0, 0

	done := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() { // ps, all along: never one name twice
		defer watch.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			out, errs, code := h.run("", "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Status}}")
			if code != 0 {
				t.Errorf("ps: exit %d: %s", code, errs)
				continue
			}
			seen := map[string]string{}
			mu.Lock()
			psRuns++
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if l == "" {
					continue
				}
				f := strings.Fields(l)
				if len(f) < 3 || !fullID.MatchString(f[0]) {
					t.Errorf("ps line %q", l)
					continue
				}
				shown[f[0]] = true
				if other, dup := seen[f[1]]; dup {
					t.Errorf("two containers named %s: %s and %s\n%s", f[1], other, f[0], out)
				}
				seen[f[1]] = f[0]
			}
			mu.Unlock()
		}
	}()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				args := []string{"run", "-d"}
				name := ""
				if w%4 == 0 {
					name = names[rand.IntN(len(names))]
					args = append(args, "--name", name)
				}
				out, errs, code := h.run("", append(args, "busybox", "sleep", marker)...)
				got := time.Now()
				if name != "" && code == 125 && strings.Contains(errs, `Conflict. The container name "/`+name+`" is already in use by container "`) {
					mu.Lock()
					conflicts++
					mu.Unlock()
					time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
					continue
				}
				id := strings.TrimSpace(out)
				if code != 0 || !fullID.MatchString(id) || errs != "" {
					t.Errorf("worker %d: run -d: exit %d: %q %q", w, code, out, errs)
					return
				}
				mu.Lock()
				made[id] = true
				mu.Unlock()
				ref, want := id, fmt.Sprintf("w%d-%d\n", w, i)
				execArgs := []string{"exec", id, "echo", strings.TrimSpace(want)}
				if name != "" { // the name must lead to this container
					ref, want = name, id[:12]+"\n"
					execArgs = []string{"exec", name, "hostname"}
				}
				if out, errs, code := h.run("", execArgs...); code != 0 || out != want {
					t.Errorf("worker %d: exec %s: exit %d: %q (want %q) %q", w, ref, code, out, want, errs)
				}
				release := time.Now()
				if out, errs, code := h.run("", "rm", "-f", ref); code != 0 || out != ref+"\n" {
					t.Errorf("worker %d: rm -f %s: exit %d: %q %q", w, ref, code, out, errs)
				}
				mu.Lock()
				loops++
				if name != "" {
					holds[name] = append(holds[name], hold{id, got, release})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(done)
	watch.Wait()
	t.Logf("%d loops (run, exec, rm) by %d workers, %d name conflicts, %d ps runs", loops, workers, conflicts, psRuns)
	if loops < workers {
		t.Fatalf("only %d loops", loops)
	}
	for name, hs := range holds {
		slices.SortFunc(hs, func(a, b hold) int { return a.start.Compare(b.start) })
		for i := 1; i < len(hs); i++ {
			if hs[i].start.Before(hs[i-1].end) {
				t.Errorf("name %s held by %s and %s at once", name, hs[i-1].id, hs[i].id)
			}
		}
	}
	for id := range shown {
		if !made[id] {
			t.Errorf("ps showed a container nobody made: %s", id)
		}
	}
	if out := h.ok("ps", "-aq"); out != "" {
		t.Fatalf("containers left: %q", out)
	}
	h.checkClean("", made, base, marker)
}

// TestKillCLIAtRandomMoments SIGKILLs `run -d`, `run --rm` and `rm -f`
// after a random delay that spans each command's whole run, and checks
// that every container then either fully exists (ps lists it, inspect
// reads it, start and rm work on it) or does not exist at all; that a
// bystander container lives through it all; and that nothing is left.
func TestKillCLIAtRandomMoments(t *testing.T) {
	h := newHost(t)
	base := h.snapshotCount()
	marker := sleepMarker()
	rounds := 30
	if testing.Short() {
		rounds = 9
	}
	if v := os.Getenv("BERTH_KILL_ROUNDS"); v != "" {
		rounds, _ = strconv.Atoi(v)
	}
	bystander := strings.TrimSpace(h.ok("run", "-d", "--name", "bystander", "busybox", "sleep", "1000000"))
	ids := map[string]bool{bystander: true}

	ops := []struct {
		name string
		args func(i int) []string
		prep func() string // a container for the command, or ""
	}{
		{"run -d", func(i int) []string {
			if i%2 == 0 {
				return []string{"run", "-d", "--name", fmt.Sprintf("k%d", i), "busybox", "sleep", marker}
			}
			return []string{"run", "-d", "busybox", "sleep", marker}
		}, nil},
		{"run --rm", func(int) []string { return []string{"run", "--rm", "busybox", "true"} }, nil},
		{"rm -f", nil, func() string { return strings.TrimSpace(h.ok("run", "-d", "busybox", "sleep", marker)) }},
	}
	// How long each command takes when left alone: the delays span it.
	span := make([]time.Duration, len(ops))
	for k, op := range ops {
		for i := range 3 {
			args := []string{}
			if op.prep != nil {
				id := op.prep()
				ids[id] = true
				args = []string{"rm", "-f", id}
			} else {
				args = op.args(1000 + i)
			}
			start := time.Now()
			h.ok(args...)
			span[k] = max(span[k], time.Since(start))
		}
		span[k] = span[k] * 5 / 4
	}
	for _, id := range strings.Fields(h.ok("ps", "-aq", "--no-trunc")) {
		if id != bystander {
			h.ok("rm", "-f", id)
		}
	}
	t.Logf("unkilled durations (+25%%): run -d %v, run --rm %v, rm -f %v", span[0], span[1], span[2])

	outcomes := map[string]int{}
	for i := range rounds {
		k := i % len(ops)
		op := ops[k]
		var args []string
		if op.prep != nil {
			id := op.prep()
			ids[id] = true
			args = []string{"rm", "-f", id}
		} else {
			args = op.args(i)
		}
		delay := time.Duration(rand.Int64N(int64(span[k])))
		cmd := h.command(args...)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Kill()
		err := cmd.Wait()
		killed := err != nil && strings.Contains(err.Error(), "killed")
		if id := strings.TrimSpace(out.String()); fullID.MatchString(id) {
			ids[id] = true
		}
		for _, dir := range []string{filepath.Join(h.root, "containers"), filepath.Join(h.runRoot, "containers"), filepath.Join(h.runRoot, "runtime")} {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				ids[e.Name()] = true
			}
		}
		h.settle()
		outcome := h.checkWhole(bystander, fmt.Sprintf("round %d, %s killed after %v (killed %v)", i, op.name, delay, killed))
		outcomes[op.name+": "+outcome]++
		h.checkClean(bystander, ids, base, marker)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range outcomes {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		t.Logf("%3d × %s", outcomes[k], k)
	}
	if out, _, code := h.run("", "exec", "bystander", "echo", "alive"); code != 0 || out != "alive\n" {
		t.Fatalf("bystander: exec: %d %q", code, out)
	}
	if st := h.state("bystander"); st["Status"] != "running" {
		t.Fatalf("bystander: %v", st)
	}
	h.ok("rm", "-f", "bystander")
	h.checkClean("", ids, base, marker)
}

// checkWhole checks that every container of h but keep is whole: ps
// lists exactly the containers on disk, inspect reads each, a created
// one starts, and rm -f removes each. It returns what it found, for the
// round's tally.
func (h *host) checkWhole(keep, round string) string {
	h.t.Helper()
	t := h.t
	ps := strings.Fields(h.ok("ps", "-aq", "--no-trunc"))
	var onDisk []string
	ents, _ := os.ReadDir(filepath.Join(h.root, "containers"))
	for _, e := range ents {
		onDisk = append(onDisk, e.Name())
	}
	slices.Sort(ps)
	if !slices.Equal(ps, onDisk) {
		t.Fatalf("%s: ps lists %v, on disk %v", round, ps, onDisk)
	}
	var found []string
	for _, id := range ps {
		if id == keep {
			continue
		}
		st := h.state(id)
		status := st["Status"].(string)
		found = append(found, status)
		switch status {
		case "created":
			// It must start as a container never started does.
			if h.inspect(id)["HostConfig"].(map[string]any)["AutoRemove"] == true {
				break
			}
			h.ok("start", id)
			if st := h.state(id); st["Status"] != "running" || st["Pid"].(float64) <= 0 {
				t.Fatalf("%s: after start of created %s: %v", round, id, st)
			}
			if out, _, code := h.run("", "exec", id, "echo", "ok"); code != 0 || out != "ok\n" {
				t.Fatalf("%s: exec in %s after start: %d %q", round, id, code, out)
			}
		case "running", "exited", "removing":
		default:
			t.Fatalf("%s: %s is %v", round, id, st)
		}
		out, errs, code := h.run("", "rm", "-f", id)
		if code != 0 || out != id+"\n" && out != "" {
			t.Fatalf("%s: rm -f %s: %d %q %q", round, id, code, out, errs)
		}
		if out == "" { // docker's rm -f of a container gone meanwhile: only if it is gone
			if _, _, code := h.run("", "inspect", id); code == 0 {
				t.Fatalf("%s: rm -f %s printed nothing but the container is there", round, id)
			}
		}
	}
	if len(found) == 0 {
		return "nothing left"
	}
	slices.Sort(found)
	return strings.Join(found, "+")
}
