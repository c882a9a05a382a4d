package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
)

// sub is h for a subtest: the same roots, failures reported on t.
func (h *host) sub(t *testing.T) *host { return &host{t: t, root: h.root, runRoot: h.runRoot} }

// cgroupCat prints a cgroup file of the container's own cgroup, as cgroup
// v1 names it or else as v2 does.
func cgroupCat(v1, v2 string) string {
	return fmt.Sprintf("cat /sys/fs/cgroup/%s 2>/dev/null || cat /sys/fs/cgroup/%s", v1, v2)
}

// hostStatus returns a field of this process's /proc/self/status.
func hostStatus(t *testing.T, field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return ""
}

// netDevs lists the interfaces of a /proc/net/dev listing.
func netDevs(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if name, _, ok := strings.Cut(l, ":"); ok && !strings.Contains(name, "|") {
			out = append(out, strings.TrimSpace(name))
		}
	}
	return out
}

// hostDevice names a device node of the host's /dev that an unprivileged
// container does not get.
func hostDevice(t *testing.T) string {
	ents, _ := os.ReadDir("/dev")
	std := map[string]bool{"null": true, "zero": true, "full": true, "random": true, "urandom": true, "tty": true, "console": true, "ptmx": true}
	for _, e := range ents {
		if e.Type()&(os.ModeDevice|os.ModeCharDevice) != 0 && !std[e.Name()] {
			return e.Name()
		}
	}
	t.Skip("no device node in /dev beyond the standard ones")
	return ""
}

// TestRunFlags runs `berth run --rm FLAGS busybox sh -c CHECK` for each
// flag of run; CHECK's output (stdout and stderr) proves from inside the
// container that the flag took effect.
func TestRunFlags(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envFile := write("env", "FROM_FILE=1\n# a comment\nPASSED\n\nSPACED=a b\n")
	os.Setenv("PASSED", "from-host")
	bind := filepath.Join(dir, "bind")
	os.Mkdir(bind, 0o755)
	write("bind/f", "bound\n")
	denyMkdir := write("deny-mkdir.json", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`)
	h.ok("run", "-d", "--name", "vsrc", "-v", "/data", "busybox", "sh", "-c", "echo shared > /data/f; sleep 1000")
	waitFor(t, func() bool { _, _, code := h.run("", "exec", "vsrc", "test", "-e", "/data/f"); return code == 0 })
	capBnd := hostStatus(t, "CapBnd")
	dev := hostDevice(t)
	hostIfs := func() string {
		b, _ := os.ReadFile("/proc/net/dev")
		return strings.Join(netDevs(string(b)), " ")
	}()

	for _, tc := range []struct {
		name  string
		flags []string
		check string // run by sh -c, stderr joined to stdout
		want  string // a regexp the whole output must match
	}{
		{"defaults", nil, "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; id; pwd; hostname | wc -c",
			"^CapEff:\t00000000a80425fb\nNoNewPrivs:\t0\nSeccomp:\t2\nuid=0\\(root\\) gid=0\\(root\\).*\n/\n13\n$"},
		{"-e", []string{"-e", "A=1", "-e", "B=two words", "-e", "PASSED"}, `echo "$A|$B|$PASSED"`, "^1\\|two words\\|from-host\n$"},
		{"--env-file", []string{"--env-file", envFile}, `echo "$FROM_FILE|$PASSED|$SPACED"`, "^1\\|from-host\\|a b\n$"},
		{"-w existing", []string{"-w", "/tmp"}, "pwd", "^/tmp\n$"},
		{"-w missing", []string{"-w", "/new/work/dir"}, "pwd; stat -c '%u %a' .", "^/new/work/dir\n0 755\n$"},
		{"-u uid", []string{"-u", "1000"}, "id", "^uid=1000 gid=0\\(root\\)"},
		{"-u uid:gid", []string{"-u", "1000:2000"}, "id -u; id -g", "^1000\n2000\n$"},
		{"-u name", []string{"-u", "nobody"}, "id", "^uid=65534\\(nobody\\) gid=65534\\(nogroup\\)"},
		{"-v bind rw", []string{"-v", bind + ":/b"}, "cat /b/f; echo new > /b/rw && cat /b/rw", "^bound\nnew\n$"},
		{"-v bind ro", []string{"-v", bind + ":/b:ro"}, "cat /b/f; touch /b/x", "^bound\ntouch: /b/x: Read-only file system\n$"},
		{"-v named volume filled from the image", []string{"-v", "binvol:/bin"}, "ls /bin/busybox /bin/sh", "^/bin/busybox\n/bin/sh\n$"},
		{"-v anonymous", []string{"-v", "/anon"}, "grep -c ' /anon ' /proc/mounts; touch /anon/x && echo ok", "^1\nok\n$"},
		{"--mount bind", []string{"--mount", "type=bind,src=" + bind + ",dst=/m,readonly"}, "cat /m/f; touch /m/x",
			"^bound\ntouch: /m/x: Read-only file system\n$"},
		{"--mount volume", []string{"--mount", "type=volume,src=mvol,dst=/m"}, "grep -c ' /m ' /proc/mounts; touch /m/x && echo ok", "^1\nok\n$"},
		{"--mount tmpfs", []string{"--mount", "type=tmpfs,dst=/t,tmpfs-size=1m"}, "grep ' /t ' /proc/mounts", "^tmpfs /t tmpfs .*size=1024k"},
		{"--tmpfs", []string{"--tmpfs", "/t:size=2m,mode=1700"}, "grep ' /t ' /proc/mounts; stat -c %a /t",
			"^tmpfs /t tmpfs .*size=2048k,mode=1700 0 0\n1700\n$"},
		{"--volumes-from", []string{"--volumes-from", "vsrc"}, "cat /data/f; touch /data/g && echo rw", "^shared\nrw\n$"},
		{"--volumes-from :ro", []string{"--volumes-from", "vsrc:ro"}, "touch /data/g", "Read-only file system\n$"},
		{"--hostname", []string{"--hostname", "myhost"}, "hostname; cat /etc/hostname", "^myhost\nmyhost\n$"},
		{"--memory", []string{"--memory", "64m"}, cgroupCat("memory/memory.limit_in_bytes", "memory.max"), "^67108864\n$"},
		{"--memory-swap", []string{"--memory", "64m", "--memory-swap", "128m"},
			cgroupCat("memory/memory.memsw.limit_in_bytes", "memory.swap.max"), "^(134217728|67108864)\n$"},
		{"--cpus", []string{"--cpus", "1.5"}, cgroupCat("cpu/cpu.cfs_quota_us", "cpu.max"), "^150000( 100000)?\n$"},
		{"--cpu-shares", []string{"--cpu-shares", "512"}, cgroupCat("cpu/cpu.shares", "cpu.weight"), "^(512|20)\n$"},
		{"--cpuset-cpus", []string{"--cpuset-cpus", "0"}, cgroupCat("cpuset/cpuset.cpus", "cpuset.cpus"), "^0\n$"},
		{"--pids-limit", []string{"--pids-limit", "10"}, cgroupCat("pids/pids.max", "pids.max") + "; for i in $(seq 20); do sleep 0.2 & done",
			"(?s)^10\n.*can't fork"},
		{"--ulimit", []string{"--ulimit", "nofile=100:200"}, "ulimit -n; ulimit -Hn", "^100\n200\n$"},
		// SYS_ADMIN is bit 21, NET_RAW bit 13.
		{"--cap-add --cap-drop", []string{"--cap-add", "SYS_ADMIN", "--cap-drop", "net_raw"}, "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
			"^CapEff:\t00000000a82405fb\nCapBnd:\t00000000a82405fb\n$"},
		{"--privileged", []string{"--privileged"}, "grep -E '^(CapEff|Seccomp):' /proc/self/status; test -e /dev/" + dev + " && echo dev",
			"^CapEff:\t" + capBnd + "\nSeccomp:\t0\ndev\n$"},
		{"not privileged", nil, "test -e /dev/" + dev + " || echo nodev", "^nodev\n$"},
		{"seccomp=unconfined", []string{"--security-opt", "seccomp=unconfined"}, "grep '^Seccomp:' /proc/self/status", "^Seccomp:\t0\n$"},
		{"seccomp=PATH", []string{"--security-opt", "seccomp=" + denyMkdir}, "grep '^Seccomp:' /proc/self/status; mkdir /x",
			"^Seccomp:\t2\nmkdir: can't create directory '/x': Operation not permitted\n$"},
		{"no-new-privileges", []string{"--security-opt", "no-new-privileges"}, "grep NoNewPrivs /proc/self/status", "^NoNewPrivs:\t1\n$"},
		{"--read-only", []string{"--read-only"}, "touch /x; touch /tmp/x; touch /dev/shm/x && echo shm",
			"^touch: /x: Read-only file system\ntouch: /tmp/x: Read-only file system\nshm\n$"},
		{"--read-only --tmpfs", []string{"--read-only", "--tmpfs", "/tmp"}, "touch /tmp/x && echo tmp", "^tmp\n$"},
		{"--init", []string{"--init"}, "ps -o pid,comm | grep ' 1 '", "^ +1 docker-init\n$"},
		{"--device", []string{"--device", "/dev/null:/dev/mynull"}, "stat -c '%F %t,%T' /dev/mynull; echo x > /dev/mynull && echo wrote",
			"^character special file 1,3\nwrote\n$"},
		{"--group-add", []string{"--group-add", "10", "--group-add", "nogroup"}, "id -G", "^0 10 65534\n$"},
		{"--sysctl net", []string{"--sysctl", "net.ipv4.ip_forward=1"}, "cat /proc/sys/net/ipv4/ip_forward", "^1\n$"},
		{"--sysctl kernel", []string{"--sysctl", "kernel.msgmax=12345"}, "cat /proc/sys/kernel/msgmax", "^12345\n$"},
		{"--shm-size", []string{"--shm-size", "32m"}, "df -k /dev/shm | tail -1", "^shm +32768 "},
		{"default shm", nil, "df -k /dev/shm | tail -1", "^shm +65536 "},
		{"--oom-score-adj", []string{"--oom-score-adj", "500"}, "cat /proc/self/oom_score_adj", "^500\n$"},
		{"--network none", []string{"--network", "none"}, "cat /proc/net/dev", "(?s)^Inter.*\n +lo:[^\n]*\n$"},
		{"--network host", []string{"--network", "host"}, "cat /proc/net/dev", ""}, // checked below
		{"-i", []string{"-i"}, "cat", "^from stdin\n$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := h.sub(t)
			args := append(append([]string{"run", "--rm"}, tc.flags...), "busybox", "sh", "-c", "exec 2>&1; "+tc.check)
			out, errs, _ := h.run("from stdin\n", args...)
			if tc.name == "--network host" {
				if got := strings.Join(netDevs(out), " "); got != hostIfs {
					t.Errorf("interfaces %q, want the host's %q (stderr %q)", got, hostIfs, errs)
				}
				return
			}
			if !regexp.MustCompile(tc.want).MatchString(out) {
				t.Errorf("%v: output %q does not match %q (stderr %q)", tc.flags, out, tc.want, errs)
			}
		})
	}
}

// TestRunFlagsRecorded covers flags seen through inspect and behaviour
// outside the container.
func TestRunFlagsRecorded(t *testing.T) {
	h := newHost(t)
	t.Run("entrypoint", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		if out := h.ok("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"); out != "a b\n" {
			t.Errorf("--entrypoint echo: %q", out)
		}
		if out := h.ok("run", "--rm", "--entrypoint", "", "busybox", "echo", "c"); out != "c\n" {
			t.Errorf(`--entrypoint "": %q`, out)
		}
		id := strings.TrimSpace(h.ok("create", "--entrypoint", "/bin/echo", "busybox", "x"))
		if in := h.inspect(id); fmt.Sprintf("%v %v", in["Path"], in["Args"]) != "/bin/echo [x]" {
			t.Errorf("inspect Path/Args: %v %v", in["Path"], in["Args"])
		}
	})
	t.Run("labels restart health name", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		h.ok("create", "--name", "rec", "-l", "a=b", "--label", "c=d", "--restart", "on-failure:3",
			"--health-cmd", "true", "--health-interval", "2s", "--health-timeout", "1s", "--health-retries", "4",
			"--health-start-period", "3s", "busybox", "true")
		in := h.inspect("rec")
		cfg, hc := in["Config"].(map[string]any), in["HostConfig"].(map[string]any)
		if in["Name"] != "/rec" {
			t.Errorf("Name %v", in["Name"])
		}
		if fmt.Sprint(cfg["Labels"]) != "map[a:b c:d]" {
			t.Errorf("Labels %v", cfg["Labels"])
		}
		if fmt.Sprint(hc["RestartPolicy"]) != "map[MaximumRetryCount:3 Name:on-failure]" {
			t.Errorf("RestartPolicy %v", hc["RestartPolicy"])
		}
		if fmt.Sprint(cfg["Healthcheck"]) != "map[Interval:2e+09 Retries:4 StartPeriod:3e+09 Test:[CMD-SHELL true] Timeout:1e+09]" {
			t.Errorf("Healthcheck %v", cfg["Healthcheck"])
		}
	})
	t.Run("--rm", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		h.ok("run", "--rm", "--name", "gone", "busybox", "true")
		if _, errs, code := h.run("", "inspect", "gone"); code == 0 || !strings.Contains(strings.ToLower(errs), "no such object: gone") {
			t.Errorf("after --rm: inspect exit %d %q", code, errs)
		}
	})
	t.Run("--stop-signal --stop-timeout", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		h.ok("run", "-d", "--name", "usr1", "--stop-signal", "SIGUSR1", "busybox", "sh", "-c",
			`trap "echo got usr1; exit 7" USR1; echo up; while :; do sleep 0.1; done`)
		h.ok("run", "-d", "--name", "deaf", "--stop-timeout", "1", "busybox", "sh", "-c", `trap "" TERM; echo up; while :; do sleep 0.1; done`)
		for _, n := range []string{"usr1", "deaf"} {
			waitFor(t, func() bool { return h.ok("logs", n) == "up\n" })
		}
		if cfg := h.inspect("usr1")["Config"].(map[string]any); cfg["StopSignal"] != "SIGUSR1" {
			t.Errorf("StopSignal %v", cfg["StopSignal"])
		}
		if cfg := h.inspect("deaf")["Config"].(map[string]any); cfg["StopTimeout"] != 1.0 {
			t.Errorf("StopTimeout %v", cfg["StopTimeout"])
		}
		h.ok("stop", "usr1")
		if st := h.state("usr1"); st["ExitCode"] != 7.0 || h.ok("logs", "usr1") != "up\ngot usr1\n" {
			t.Errorf("stop with SIGUSR1: %v, logs %q", st["ExitCode"], h.ok("logs", "usr1"))
		}
		start := time.Now()
		h.ok("stop", "deaf")
		if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
			t.Errorf("stop of a container ignoring TERM with --stop-timeout 1 took %v", d)
		}
		if st := h.state("deaf"); st["ExitCode"] != 137.0 {
			t.Errorf("after stop timeout: exit %v", st["ExitCode"])
		}
	})
	t.Run("--log-opt", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		id := strings.TrimSpace(h.ok("run", "-d", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
			"for i in $(seq 200); do echo line$i; done"))
		h.ok("wait", id)
		dir := filepath.Join(h.root, "containers", id)
		for _, f := range []string{id + "-json.log", id + "-json.log.1"} {
			if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() > 1024+200 {
				t.Errorf("%s: %v (size %v)", f, err, fi)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, id+"-json.log.2")); err == nil {
			t.Errorf("max-file=2 kept a third file")
		}
		logs := h.ok("logs", id)
		if n := strings.Count(logs, "\n"); !strings.HasSuffix(logs, "line199\nline200\n") || n >= 200 || n < 5 {
			t.Errorf("logs after rotation: %d lines ending %q", n, logs[max(0, len(logs)-20):])
		}
	})
	t.Run("--cidfile", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		cid := filepath.Join(t.TempDir(), "cid")
		h.ok("run", "--rm", "--cidfile", cid, "busybox", "true")
		if b, err := os.ReadFile(cid); err != nil || !regexp.MustCompile("^[0-9a-f]{64}$").Match(b) {
			t.Errorf("cidfile: %q %v", b, err)
		}
		_, errs, code := h.run("", "run", "--rm", "--cidfile", cid, "busybox", "true")
		if code != 125 || !strings.Contains(errs, "ontainer ID file found, make sure the other container isn't running or delete "+cid) {
			t.Errorf("existing cidfile: exit %d %q", code, errs)
		}
	})
	t.Run("-a", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		for _, tc := range []struct{ stream, out, err string }{{"stdout", "out\n", ""}, {"stderr", "", "err\n"}} {
			out, errs, code := h.run("", "run", "--rm", "-a", tc.stream, "busybox", "sh", "-c", "echo out; echo err >&2")
			if code != 0 || out != tc.out || errs != tc.err {
				t.Errorf("-a %s: exit %d out %q err %q", tc.stream, code, out, errs)
			}
		}
	})
	t.Run("-t", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		if out := h.inTerminal("berth run --rm -t busybox tty"); !strings.Contains(out, "/dev/pts/0") {
			t.Errorf("run -t: tty printed %q", out)
		}
	})
	t.Run("--sig-proxy", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		loop := `trap "echo got term; exit 3" TERM; echo ready; while :; do sleep 0.1; done`
		cmd, out := h.start("run", "--rm", "busybox", "sh", "-c", loop)
		if l, _ := out.ReadString('\n'); l != "ready\n" {
			t.Fatalf("first line %q", l)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		rest, _ := io.ReadAll(out)
		if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 3 || string(rest) != "got term\n" {
			t.Errorf("SIGTERM proxied: %v, exit %d, output %q", err, cmd.ProcessState.ExitCode(), rest)
		}
		cmd, out = h.start("run", "--name", "noproxy", "--sig-proxy=false", "busybox", "sh", "-c", loop)
		if l, _ := out.ReadString('\n'); l != "ready\n" {
			t.Fatalf("first line %q", l)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if st := h.state("noproxy"); st["Running"] != true {
			t.Errorf("--sig-proxy=false: the container got berth's SIGTERM: %v", st)
		}
	})
	t.Run("--detach-keys", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		for _, tc := range []struct {
			name, flag, keys string
		}{{"dk-default", "", "\x10\x11"}, {"dk-custom", "--detach-keys=ctrl-a,x", "\x01x"}} {
			out := h.typeInTerminal(fmt.Sprintf("berth run -it --name %s %s busybox sh", tc.name, tc.flag), "echo in''side\n", "inside", tc.keys)
			if !strings.Contains(out, "inside") {
				t.Errorf("%s: output %q", tc.name, out)
			}
			if st := h.state(tc.name); st["Running"] != true {
				t.Errorf("%s: not running after the detach keys: %v", tc.name, st)
			}
		}
	})
	t.Run("--runtime", func(t *testing.T) {
		t.Parallel()
		const runc = "/usr/sbin/runc"
		if _, err := os.Stat(runc); err != nil {
			t.Skip("no " + runc)
		}
		h := h.sub(t)
		if out := h.ok("run", "--rm", "--runtime", runc, "busybox", "echo", "by runc"); out != "by runc\n" {
			t.Errorf("run: %q", out)
		}
		h.ok("run", "-d", "--name", "runc", "--runtime", runc, "busybox", "sleep", "1000")
		if out := h.ok("exec", "runc", "echo", "exec"); out != "exec\n" {
			t.Errorf("exec: %q", out)
		}
		if hc := h.inspect("runc")["HostConfig"].(map[string]any); hc["Runtime"] != runc {
			t.Errorf("HostConfig.Runtime %v", hc["Runtime"])
		}
	})
}

// start starts berth in the background and returns its stdout.
func (h *host) start(args ...string) (*exec.Cmd, *bufio.Reader) {
	h.t.Helper()
	cmd := exec.Command(berthBin(h.t), append([]string{"--root", h.root, "--runroot", h.runRoot}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

// typeInTerminal runs line under script(1), types input, waits until the
// output shows want, then types keys and waits for line to end.
func (h *host) typeInTerminal(line, input, want, keys string) string {
	h.t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		h.t.Skip("script(1) is not installed")
	}
	b := berthBin(h.t) + " --root " + h.root + " --runroot " + h.runRoot
	cmd := exec.Command("script", "-qec", strings.ReplaceAll(line, "berth ", b+" "), "/dev/null")
	in, _ := cmd.StdinPipe()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "# ") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	io.WriteString(in, input)
	for !strings.Contains(out.String(), want+"\r\n") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	io.WriteString(in, keys)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		h.t.Errorf("%s: still attached after the detach keys:\n%s", line, out.String())
	}
	in.Close()
	return out.String()
}

// TestRunPullFlag covers --pull never, missing and always against a
// registry on 127.0.0.1.
func TestRunPullFlag(t *testing.T) {
	h := newHost(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushImage(t, reg, "library/busybox:latest", testenv.BusyboxImage(t))
	name := reg.Host + "/library/busybox"
	manifests := func() int { return strings.Count(reg.Log(), "/v2/library/busybox/manifests/latest") }

	_, errs, code := h.run("", "run", "--rm", "--pull", "never", name, "true")
	if code != 125 || !strings.Contains(errs, "No such image: "+name+":latest") {
		t.Errorf("--pull never of a missing image: exit %d %q", code, errs)
	}
	out, errs, code := h.run("", "run", "--rm", "--pull", "missing", name, "echo", "pulled")
	if code != 0 || out != "pulled\n" || !strings.Contains(errs, "Unable to find image '"+name+":latest' locally") {
		t.Errorf("--pull missing: exit %d out %q err %q", code, out, errs)
	}
	n := manifests()
	if out := h.ok("run", "--rm", "--pull", "missing", name, "echo", "local"); out != "local\n" || manifests() != n {
		t.Errorf("--pull missing of a present image: %q, asked the registry %d more times", out, manifests()-n)
	}
	if out := h.ok("run", "--rm", "--pull", "never", name, "echo", "never"); out != "never\n" {
		t.Errorf("--pull never of a present image: %q", out)
	}
	if out := h.ok("run", "--rm", "--pull", "always", name, "echo", "always"); out != "always\n" || manifests() == n {
		t.Errorf("--pull always: %q, registry asked %d more times", out, manifests()-n)
	}
	_, errs, code = h.run("", "run", "--rm", "--pull", "sometimes", name, "true")
	if code != 125 || !strings.Contains(errs, `invalid pull option: 'sometimes': must be one of "always", "missing" or "never"`) {
		t.Errorf("--pull sometimes: exit %d %q", code, errs)
	}
}

// TestRunFlagsBadInput: a bad flag gets Docker's message and exit 125,
// and nothing is made.
func TestRunFlagsBadInput(t *testing.T) {
	h := newHost(t)
	taken := strings.TrimSpace(h.ok("create", "--name", "taken", "busybox", "true"))
	for _, tc := range []struct {
		flags []string
		msg   string
		// createCode is create's status: 125 for what docker's CLI
		// refuses, 1 for what its daemon refuses (run gives 125 for both);
		// 0: not checked (berth refuses an unknown --restart policy in the
		// CLI, docker in its daemon).
		createCode int
	}{
		{[]string{"--memory", "abc"}, `invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'`, 125},
		{[]string{"--memory", "1k"}, "Minimum memory limit allowed is 6MB\n", 1},
		{[]string{"-p", "garbage"}, "invalid containerPort: garbage", 125},
		{[]string{"--name", "taken"}, `The container name "/taken" is already in use by container "` + taken + `"`, 1},
		{[]string{"--cpus", "1000"}, "ange of CPUs is from 0.01 to", 1},
		{[]string{"--cpuset-cpus", "999"}, "Requested CPUs are not available - requested 999, available: ", 1},
		{[]string{"--ulimit", "bogus=1"}, "invalid ulimit type: bogus", 125},
		{[]string{"--device", "/nonexistent"}, `error gathering device information while adding custom device "/nonexistent": no such file or directory` + "\n", 1},
		{[]string{"--security-opt", "seccomp=/nonexistent"}, "opening seccomp profile (/nonexistent) failed", 125},
		{[]string{"--cap-add", "NOPE"}, `unknown capability: "CAP_NOPE"` + "\n", 1},
		{[]string{"-w", "rel"}, "the working directory 'rel' is invalid, it needs to be an absolute path\n", 1},
		{[]string{"--restart", "bogus"}, "invalid restart policy: unknown policy 'bogus'", 0},
		{[]string{"--bogus"}, "unknown flag: --bogus", 125},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			t.Parallel()
			h := h.sub(t)
			for _, cmd := range []string{"run", "create"} {
				want := 125
				if cmd == "create" {
					want = tc.createCode
				}
				args := append(append([]string{cmd}, tc.flags...), "busybox", "true")
				if _, errs, code := h.run("", args...); want != 0 && code != want || !strings.Contains(errs, tc.msg) {
					t.Errorf("%v: exit %d, stderr %q; want %d, %q", args, code, errs, want, tc.msg)
				}
			}
		})
	}
	t.Run("missing image with --pull never", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		if _, errs, code := h.run("", "run", "--pull", "never", "nosuch"); code != 125 || !strings.Contains(errs, "No such image: nosuch:latest") {
			t.Errorf("exit %d %q", code, errs)
		}
	})
	t.Cleanup(func() {
		if out := h.ok("ps", "-aq", "--no-trunc"); out != taken+"\n" {
			t.Errorf("bad runs left containers: %q", out)
		}
		for _, d := range []string{filepath.Join(h.root, "containers"), filepath.Join(h.runRoot, "containers")} {
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				if e.Name() != taken {
					t.Errorf("bad runs left %s/%s", d, e.Name())
				}
			}
		}
	})
}
