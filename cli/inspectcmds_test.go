package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-units"
)

// cgroupFile reads a file of a container's cgroup v1 controller.
func cgroupFile(t *testing.T, controller, id, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, "berth", id, file))
	if err != nil {
		t.Skipf("cgroup v1 %s controller: %v", controller, err)
	}
	return strings.TrimSpace(string(b))
}

func (h *host) fullID(ref string) string {
	h.t.Helper()
	return h.inspect(ref)["Id"].(string)
}

// event finds the last event of action on the container id in the
// host's event log and returns its attributes.
func (h *host) event(action, id string) map[string]string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.root, "events.log"))
	if err != nil {
		h.t.Fatal(err)
	}
	var found map[string]string
	for _, l := range lines(string(b)) {
		var m struct {
			Action string
			Actor  struct {
				ID         string
				Attributes map[string]string
			}
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Action == action && m.Actor.ID == id {
			found = m.Actor.Attributes
		}
	}
	if found == nil {
		h.t.Fatalf("no %s event for %s in %s", action, id, b)
	}
	return found
}

func TestTopCommand(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "tt", "busybox", "sh", "-c", "sleep 1000 & sleep 2000; echo")
	var out string
	waitFor(t, func() bool {
		out = h.ok("top", "tt")
		return strings.Contains(out, "sleep 1000") && strings.Contains(out, "sleep 2000")
	})
	ls := lines(out)
	if !regexp.MustCompile(`^UID +PID +PPID +C +STIME +TTY +TIME +CMD$`).MatchString(ls[0]) {
		t.Fatalf("top header: %q", ls[0])
	}
	// Only the container's processes: sh and its two sleeps.
	if len(ls) != 4 || !strings.Contains(out, "sh -c sleep 1000 & sleep 2000; echo") {
		t.Fatalf("top: %q", out)
	}
	pid := h.state("tt")["Pid"].(float64)
	if fields := strings.Fields(ls[1]); fields[1] != strconv.Itoa(int(pid)) {
		t.Fatalf("first process is not init %v: %q", pid, ls[1])
	}
	// ps options after the container; the command with its spaces is
	// one column even when it is not the last.
	out = h.ok("container", "top", "tt", "-o", "args,pid")
	if ls := lines(out); len(ls) != 4 || !regexp.MustCompile(`^COMMAND +PID$`).MatchString(ls[0]) ||
		!regexp.MustCompile(`(?m)^sleep 2000 +\d+$`).MatchString(out) {
		t.Fatalf("top -o args,pid: %q", out)
	}
	if _, errs, code := h.run("", "top", "tt", "-o", "user=PID"); code != 1 || !strings.Contains(errs, `specifying "user=PID" is not allowed`) {
		t.Fatalf("top -o user=PID: %d %q", code, errs)
	}
	h.ok("create", "--name", "idle", "busybox", "true")
	_, errs, code := h.run("", "top", "idle")
	if want := "Error response from daemon: container " + h.fullID("idle") + " is not running\n"; code != 1 || errs != want {
		t.Fatalf("top of a created container: %d %q, want %q", code, errs, want)
	}
	if _, errs, code := h.run("", "top", "nosuch"); code != 1 || errs != "Error response from daemon: No such container: nosuch\n" {
		t.Fatalf("top nosuch: %d %q", code, errs)
	}
}

func hostMemTotal(t *testing.T) float64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal")
	return 0
}

func TestStatsCommand(t *testing.T) {
	h := newHost(t)
	id := strings.TrimSpace(h.ok("run", "-d", "--name", "st", "--memory", "64m", "busybox", "sleep", "1000"))
	h.ok("run", "-d", "--name", "busy", "busybox", "sh", "-c", "while :; do :; done")
	h.ok("create", "--name", "idle", "busybox", "true")

	out := h.ok("stats", "--no-stream", "st")
	ls := lines(out)
	if len(ls) != 2 || !regexp.MustCompile(`^CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS$`).MatchString(ls[0]) {
		t.Fatalf("stats header: %q", out)
	}
	row := regexp.MustCompile(`^` + id[:12] + ` +st +\d+\.\d\d% +[\d.]+[KM]?i?B / 64MiB +\d+\.\d\d% +0B / 0B +[\d.]+[kM]?B / [\d.]+[kM]?B +1$`)
	if !row.MatchString(ls[1]) {
		t.Fatalf("stats row: %q", ls[1])
	}

	// Without a limit the host's memory is the limit; a spinning shell
	// uses most of a CPU.
	out = h.ok("stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}", "busy")
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 4 || f[0] != "busy" || !strings.HasSuffix(f[2], " / "+units.BytesSize(hostMemTotal(t))) || f[3] != "1" {
		t.Fatalf("stats busy: %q", out)
	}
	if cpu, _ := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64); cpu < 30 || cpu > 110 {
		t.Fatalf("busy CPU %s, want near 100%%", f[1])
	}

	// All running containers, newest first; -a adds the stopped ones, in
	// zeros.
	if out := h.ok("stats", "--no-stream", "--format", "{{.Name}}"); out != "busy\nst\n" {
		t.Fatalf("stats: %q", out)
	}
	out = h.ok("stats", "--no-stream", "-a", "--no-trunc", "--format", "{{.ID}} {{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.NetIO}} {{.BlockIO}} {{.PIDs}}")
	idle := h.fullID("idle")
	if want := idle + " idle 0.00% 0B / 0B 0.00% 0B / 0B 0B / 0B 0\n"; !strings.HasPrefix(out, want) || len(lines(out)) != 3 {
		t.Fatalf("stats -a: %q, want first %q", out, want)
	}
	var js map[string]string
	if err := json.Unmarshal([]byte(h.ok("stats", "--no-stream", "--format", "json", "idle")), &js); err != nil ||
		js["Container"] != "idle" || js["ID"] != idle[:12] || js["PIDs"] != "0" || js["MemUsage"] != "0B / 0B" {
		t.Fatalf("stats json: %v %v", js, err)
	}
	_, errs, code := h.run("", "stats", "--no-stream", "st", "nosuch")
	if code != 1 || errs != "Error response from daemon: No such container: nosuch\n" {
		t.Fatalf("stats nosuch: %d %q", code, errs)
	}

	// Streaming: frames of docker's escapes, until interrupted.
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBin(t), "--root", h.root, "--runroot", h.runRoot, "stats", "st")
	b, _ := cmd.Output()
	frames := strings.Split(string(b), "\033[H")
	if len(frames) < 3 || frames[0] != "" {
		t.Fatalf("stream: %q", b)
	}
	for _, fr := range frames[1:] {
		fl := strings.Split(fr, "\033[K\n")
		if len(fl) != 4 || !strings.HasPrefix(fl[0], "CONTAINER ID") || !row.MatchString(fl[1]) || fl[2] != "" || fl[3] != "\033[J" {
			t.Fatalf("stream frame: %q", fr)
		}
	}
}

func TestPortCommand(t *testing.T) {
	h := newHost(t)
	h.ok("create", "--name", "pp", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "-p", "9000-9001:9000-9001", "busybox", "true")
	if out, want := h.ok("port", "pp"), "53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n9000/tcp -> 0.0.0.0:9000\n9001/tcp -> 0.0.0.0:9001\n"; out != want {
		t.Fatalf("port: %q, want %q", out, want)
	}
	if out := h.ok("container", "port", "pp", "80"); out != "0.0.0.0:8080\n" {
		t.Fatalf("port pp 80: %q", out)
	}
	if out := h.ok("port", "pp", "53/udp"); out != "127.0.0.1:5353\n" {
		t.Fatalf("port pp 53/udp: %q", out)
	}
	if _, errs, code := h.run("", "port", "pp", "53"); code != 1 || errs != "no public port '53' published for pp\n" {
		t.Fatalf("port pp 53: %d %q", code, errs)
	}
	h.ok("create", "--name", "none", "busybox", "true")
	if out := h.ok("port", "none"); out != "" {
		t.Fatalf("port of a container without ports: %q", out)
	}
	if _, errs, code := h.run("", "port", "pp", "80", "extra"); code != 1 || !strings.Contains(errs, "requires at least 1 and at most 2 arguments") {
		t.Fatalf("port with 3 args: %d %q", code, errs)
	}
}

func TestRenameCommand(t *testing.T) {
	h := newHost(t)
	idA := strings.TrimSpace(h.ok("create", "--name", "aa", "busybox", "true"))
	idB := strings.TrimSpace(h.ok("create", "--name", "bb", "busybox", "true"))
	if out := h.ok("rename", "aa", "cc"); out != "" {
		t.Fatalf("rename printed %q", out)
	}
	if got := h.inspect("cc"); got["Id"] != idA || got["Name"] != "/cc" {
		t.Fatalf("inspect cc: %v %v", got["Id"], got["Name"])
	}
	if ev := h.event("rename", idA); ev["name"] != "cc" || ev["oldName"] != "/aa" || ev["image"] != "busybox" {
		t.Fatalf("rename event: %v", ev)
	}
	if _, errs, code := h.run("", "container", "inspect", "aa"); code == 0 || !strings.Contains(errs, "No such container: aa") {
		t.Fatalf("old name still found: %d %q", code, errs)
	}
	for _, tc := range []struct{ from, to, msg string }{
		{"cc", "bb", `failed to rename container: Error response from daemon: Error when allocating new name: Conflict. The container name "/bb" is already in use by container "` + idB + `". You have to remove (or rename) that container to be able to reuse that name.`},
		{"cc", "cc", "failed to rename container: Error response from daemon: Renaming a container with the same name as its current name"},
		{"cc", "bad name", "failed to rename container: Error response from daemon: Error when allocating new name: Invalid container name (/bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"},
		{"nosuch", "dd", "failed to rename container: Error response from daemon: No such container: nosuch"},
	} {
		if _, errs, code := h.run("", "rename", tc.from, tc.to); code != 1 || errs != tc.msg+"\n" {
			t.Errorf("rename %s %s: %d %q, want %q", tc.from, tc.to, code, errs, tc.msg)
		}
	}
	// The old name is free again; the new one is taken.
	h.ok("create", "--name", "aa", "busybox", "true")
	if _, errs, code := h.run("", "create", "--name", "cc", "busybox", "true"); code == 0 || !strings.Contains(errs, "is already in use") {
		t.Fatalf("create with the new name: %d %q", code, errs)
	}
	// A running container keeps running under its new name.
	h.ok("run", "-d", "--name", "rr", "busybox", "sleep", "1000")
	h.ok("container", "rename", "rr", "/r2")
	if out := h.ok("ps", "--format", "{{.Names}} {{.State}}"); out != "r2 running\n" {
		t.Fatalf("ps after rename: %q", out)
	}
	h.ok("stop", "-t", "0", "r2")
	h.ok("start", "r2")
	if st := h.state("r2"); st["Running"] != true {
		t.Fatalf("restart after rename: %v", st)
	}
}

func TestUpdateCommand(t *testing.T) {
	h := newHost(t)
	id := strings.TrimSpace(h.ok("run", "-d", "--name", "up", "--memory", "64m", "busybox", "sleep", "1000"))
	if got := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); got != strconv.Itoa(64<<20) {
		t.Fatalf("limit at start: %s", got)
	}
	if out := h.ok("update", "--memory", "96m", "up"); out != "up\n" {
		t.Fatalf("update printed %q", out)
	}
	if ev := h.event("update", id); ev["name"] != "up" {
		t.Fatalf("update event: %v", ev)
	}
	if got := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); got != strconv.Itoa(96<<20) {
		t.Fatalf("limit after update: %s", got)
	}
	// Above the recorded swap (twice the first limit), as docker.
	_, errs, code := h.run("", "update", "-m", "256m", "up")
	if want := "Error response from daemon: Cannot update container " + id + ": Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time\n"; code != 1 || errs != want {
		t.Fatalf("update -m above swap: %d %q", code, errs)
	}
	h.ok("container", "update", "-m", "200m", "--memory-swap", "400m", "--cpus", "0.5", "--pids-limit", "50", "--cpu-shares", "512", "up")
	check := func(when string) {
		t.Helper()
		for _, c := range []struct{ ctl, file, want string }{
			{"memory", "memory.limit_in_bytes", strconv.Itoa(200 << 20)},
			{"cpu", "cpu.cfs_quota_us", "50000"},
			{"cpu", "cpu.shares", "512"},
			{"pids", "pids.max", "50"},
		} {
			if got := cgroupFile(t, c.ctl, id, c.file); got != c.want {
				t.Errorf("%s: %s = %s, want %s", when, c.file, got, c.want)
			}
		}
		hc := h.inspect("up")["HostConfig"].(map[string]any)
		if hc["Memory"] != float64(200<<20) || hc["MemorySwap"] != float64(400<<20) || hc["NanoCpus"] != 5e8 || hc["PidsLimit"] != 50.0 {
			t.Errorf("%s: HostConfig %v %v %v %v", when, hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"])
		}
	}
	check("live")
	h.ok("restart", "-t", "0", "up")
	check("after restart")

	// A stopped container takes the change at its next start.
	sid := strings.TrimSpace(h.ok("create", "--name", "later", "busybox", "sleep", "1000"))
	h.ok("update", "-m", "32m", "--memory-swap", "-1", "--restart", "on-failure:3", "later")
	h.ok("start", "later")
	if got := cgroupFile(t, "memory", sid, "memory.limit_in_bytes"); got != strconv.Itoa(32<<20) {
		t.Fatalf("limit of the updated stopped container: %s", got)
	}
	if rp := h.inspect("later")["HostConfig"].(map[string]any)["RestartPolicy"].(map[string]any); rp["Name"] != "on-failure" || rp["MaximumRetryCount"] != 3.0 {
		t.Fatalf("restart policy: %v", rp)
	}

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"update", "up"}, "you must provide one or more flags when using this command\n"},
		{[]string{"update", "-m", "1m", "up"}, "Error response from daemon: Minimum memory limit allowed is 6MB\n"},
		{[]string{"update", "--cpu-period", "100000", "up"}, "Error response from daemon: Cannot update container " + id + ": Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set\n"},
		{[]string{"update", "-m", "500m", "nosuch", "up"}, "Error response from daemon: No such container: nosuch\nError response from daemon: Cannot update container " + id + ": Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time\n"},
		{[]string{"update", "--restart", "bogus", "up"}, "invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'\n"},
	} {
		if _, errs, code := h.run("", tc.args...); code != 1 || errs != tc.msg {
			t.Errorf("%v: %d %q, want %q", tc.args, code, errs, tc.msg)
		}
	}
	h.ok("run", "-d", "--rm", "--name", "auto", "busybox", "sleep", "1000")
	if _, errs, _ := h.run("", "update", "--restart", "always", "auto"); !strings.Contains(errs, "Restart policy cannot be updated because AutoRemove is enabled for the container") {
		t.Fatalf("update --restart of --rm: %q", errs)
	}
}

func TestContainerPruneCommand(t *testing.T) {
	h := newHost(t)
	h.ok("run", "-d", "--name", "live", "busybox", "sleep", "1000")
	made := strings.TrimSpace(h.ok("create", "--name", "made", "busybox", "true"))
	h.ok("run", "--name", "done", "busybox", "sh", "-c", "echo data > /file")
	done := h.fullID("done")
	kept := strings.TrimSpace(h.ok("create", "--name", "kept", "--label", "keep=1", "busybox", "true"))

	// No: nothing goes, and that is no failure.
	out, _, code := h.run("n\n", "container", "prune")
	if code != 0 || out != "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] " {
		t.Fatalf("prune answered no: %d %q", code, out)
	}
	if n := len(lines(h.ok("ps", "-aq"))); n != 4 {
		t.Fatalf("prune answered no removed containers: %d left", n)
	}
	out = h.ok("container", "prune", "-f", "--filter", "label!=keep")
	re := regexp.MustCompile(`^Deleted Containers:\n` + done + `\n` + made + `\n\nTotal reclaimed space: \d+(\.\d+)?[kM]?B\n$`)
	if !re.MatchString(out) || strings.HasSuffix(out, " 0B\n") {
		t.Fatalf("prune: %q", out)
	}
	if out := h.ok("ps", "-a", "--format", "{{.Names}}"); out != "kept\nlive\n" {
		t.Fatalf("left after prune: %q", out)
	}
	if out, _, code := h.run("y\n", "container", "prune", "--filter", "until=1h"); code != 0 || !strings.HasSuffix(out, "[y/N] Total reclaimed space: 0B\n") {
		t.Fatalf("prune until=1h: %d %q", code, out)
	}
	if out := h.ok("container", "prune", "-f"); !strings.HasPrefix(out, "Deleted Containers:\n"+kept+"\n\nTotal reclaimed space: ") {
		t.Fatalf("prune -f: %q", out)
	}
	if _, errs, code := h.run("", "container", "prune", "-f", "--filter", "dangling=true"); code != 1 || !strings.Contains(errs, "invalid filter 'dangling'") {
		t.Fatalf("prune with a bad filter: %d %q", code, errs)
	}
	if out := h.ok("ps", "-a", "--format", "{{.Names}}"); out != "live\n" {
		t.Fatalf("left: %q", out)
	}
}
