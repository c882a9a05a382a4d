package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
)

// detachedEnv sets how many detached containers BenchmarkContainers/detached
// starts in a row (default 50).
const detachedEnv = "BERTH_BENCH_DETACHED"

// benchImage is the name all three engines give the imported busybox root.
const benchImage = "busybox"

// engineUnderTest is one container engine driven through its CLI, with a
// private store holding benchImage.
type engineUnderTest struct {
	name string
	skip string // why it is not measured, if it is not
	bin  string
	args []string // global flags before the command: roots, driver, runtime
	env  []string // nil: the benchmark's own
	// rmArgs follow `rm -f`: podman's rm -f waits 10 s for the stop
	// signal (busybox sleep as PID 1 ignores SIGTERM) unless told -t 0;
	// docker's and berth's send SIGKILL at once.
	rmArgs []string
	// monitor is what the command line of the parent of a container's
	// init must contain: the per-container monitor.
	monitor string
	// daemons are long-running processes every container needs (docker's
	// dockerd; containerd is found as its child), for the RSS report.
	daemons []int
	// cpu counts the CPU time of the engine's processes (nil: not
	// counted); the benchmark enters it before running the engine.
	cpu *cpuGroup
}

func (e *engineUnderTest) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, append(slices.Clone(e.args), args...)...)
	cmd.Env = e.env
	return cmd
}

// run runs the engine and returns its standard output, or an error with
// what it printed unless it exited with status want.
func (e *engineUnderTest) run(want int, args ...string) (string, error) {
	cmd := e.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code, err = ee.ExitCode(), nil
	}
	if err != nil || code != want {
		return "", fmt.Errorf("%s %s: exit status %d, want %d (%v)\n%s%s", e.name, strings.Join(args, " "),
			code, want, err, firstLines(out.Bytes(), 10), firstLines(errb.Bytes(), 20))
	}
	return out.String(), nil
}

// containers lists the IDs of all the engine's containers.
func (e *engineUnderTest) containers() ([]string, error) {
	out, err := e.run(0, "ps", "-aq", "--no-trunc")
	return strings.Fields(out), err
}

// removeAll force-removes every container the engine has.
func (e *engineUnderTest) removeAll() {
	if ids, err := e.containers(); err == nil && len(ids) > 0 {
		e.run(0, append(append([]string{"rm", "-f"}, e.rmArgs...), ids...)...)
	}
}

// privateNetwork tells whether the process runs in a network namespace of
// its own: podman's and docker's default networks add a bridge and firewall
// rules, which must not reach the host's namespace. The host's is that of
// the kernel's threads (kthreadd, PID 2); without one to see (a PID
// namespace), that of the nearest ancestor in another namespace.
func privateNetwork() bool {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return false
	}
	if comm, err := os.ReadFile("/proc/2/comm"); err == nil && string(comm) == "kthreadd\n" {
		host, err := os.Readlink("/proc/2/ns/net")
		return err == nil && host != self
	}
	for pid := os.Getppid(); pid > 1; {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && ns != self {
			return true
		}
		st, err := procStatus(pid)
		if err != nil {
			return false
		}
		pid, _ = strconv.Atoi(st["PPid"])
	}
	return false
}

// BenchmarkContainers times whole containers through each engine's CLI,
// as a user types them, for berth, podman (runc, cgroupfs, overlay) and
// docker (Debian's docker.io, a dockerd of its own started here), each on
// a fresh private store holding the same busybox root:
//
//   - run/<engine>: `run --rm busybox true` with the engine's default
//     network (berth's is an isolated network namespace, podman's and
//     docker's a bridge with a veth pair), from the command's start to its
//     exit, the container removed;
//   - run-none/<engine>: the same with --network none;
//   - detached/<engine>: 50 `run -d busybox sleep 600` in a row (one
//     iteration: all 50); untimed, the median VmRSS, RssAnon and Pss of the
//     containers' monitors (the parent of each container's init: berth's
//     shim, podman's conmon, docker's containerd-shim-runc-v2) as rss-kB,
//     anon-kB and pss-kB, docker's daemons' total VmRSS as daemon-rss-kB,
//     and the time of one `rm -f` of all 50 as rm-ns/op.
//
// Every sample also reports cpu-ns/op: the CPU time of the engine's
// processes (CLI, monitors, helpers, docker's daemons) outside the
// containers' own cgroups, counted in a cgroup per engine (cpuGroups).
//
// It runs only in a network namespace of its own: bench/containers.sh
// makes one and runs the rounds.
func BenchmarkContainers(b *testing.B) {
	testenv.RequiresRoot(b)
	testenv.RequiresBusybox(b)
	if runtimes == nil {
		b.Skip("berth not set up: TestMain runs only as root with -bench")
	}
	if !privateNetwork() {
		b.Skip("needs a network namespace of its own (podman's and docker's bridges would change the host's): run bench/containers.sh")
	}
	n := 50
	if s := os.Getenv(detachedEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("%s=%q: want a positive number", detachedEnv, s)
		}
		n = v
	}
	b.Log(nsNote, "; private network namespace")
	tarball := busyboxTar(b)
	// Each engine is set up (dockerd started) from within its cgroup.
	groups := cpuGroups(b, "berth", "podman", "docker")
	engines := []*engineUnderTest{
		berthEngine(b, tarball, groups["berth"]),
		podmanEngine(b, tarball, groups["podman"]),
		dockerEngine(b, tarball, groups["docker"]),
	}
	k, _ := strconv.Atoi(os.Getenv(rotateEnv))
	k = ((k % len(engines)) + len(engines)) % len(engines)
	engines = append(engines[k:], engines[:k]...)

	for _, m := range []struct {
		name  string
		flags []string
	}{{"run", nil}, {"run-none", []string{"--network", "none"}}} {
		b.Run(m.name, func(b *testing.B) {
			for _, e := range engines {
				b.Run(e.name, func(b *testing.B) { benchRunRm(b, e, m.flags) })
			}
		})
	}
	b.Run("detached", func(b *testing.B) {
		for _, e := range engines {
			b.Run(e.name, func(b *testing.B) { benchDetached(b, e, n) })
		}
	})
}

// benchRunRm times `run --rm <flags> busybox true`.
func benchRunRm(b *testing.B, e *engineUnderTest, flags []string) {
	if e.skip != "" {
		b.Skip(e.skip)
	}
	if err := e.cpu.enter(); err != nil {
		b.Fatal(err)
	}
	args := func(cmd ...string) []string {
		return slices.Concat([]string{"run", "--rm"}, flags, []string{benchImage}, cmd)
	}
	// Untimed: a container exiting 7 shows that the engine runs the
	// process and reports its status; one warm-up run.
	if _, err := e.run(7, args("sh", "-c", "exit 7")...); err != nil {
		b.Fatal(err)
	}
	if _, err := e.run(0, args("true")...); err != nil {
		b.Fatal(err)
	}
	cpu := cpuMeter{g: e.cpu}
	cpu.begin(b)
	iters := 0
	for b.Loop() {
		if _, err := e.run(0, args("true")...); err != nil {
			b.Fatal(err)
		}
		iters++
	}
	b.StopTimer()
	cpu.stop(b)
	cpu.report(b, iters)
	// --rm is part of what was timed: the command must not return before
	// the container is gone.
	if ids, err := e.containers(); err != nil || len(ids) > 0 {
		b.Fatalf("%s: containers left after run --rm: %v %v", e.name, ids, err)
	}
}

// benchDetached times n `run -d busybox sleep 600` in a row, then measures
// the monitors and removes the containers (untimed, rm timed apart).
func benchDetached(b *testing.B, e *engineUnderTest, n int) {
	if e.skip != "" {
		b.Skip(e.skip)
	}
	b.Cleanup(e.removeAll)
	if err := e.cpu.enter(); err != nil {
		b.Fatal(err)
	}
	if _, err := e.run(0, "run", "--rm", benchImage, "true"); err != nil {
		b.Fatal(err)
	}
	// CPU time of the starts only: the untimed part is not counted.
	cpu := cpuMeter{g: e.cpu}
	var rm time.Duration
	var rss []memory
	var daemons int
	iters := 0
	for b.Loop() {
		ids := make([]string, 0, n)
		cpu.begin(b)
		for range n {
			out, err := e.run(0, "run", "-d", benchImage, "sleep", "600")
			if err != nil {
				b.Fatal(err)
			}
			f := strings.Fields(out)
			if len(f) == 0 {
				b.Fatalf("%s run -d printed no ID", e.name)
			}
			ids = append(ids, f[len(f)-1])
		}
		b.StopTimer()
		cpu.stop(b)
		// Let the last monitors settle from their start.
		time.Sleep(time.Second)
		m, err := monitors(e, ids)
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, m...)
		daemons = 0
		for _, pid := range e.daemons {
			daemons += treeRSS(pid)
		}
		t := time.Now()
		if _, err := e.run(0, slices.Concat([]string{"rm", "-f"}, e.rmArgs, ids)...); err != nil {
			b.Fatal(err)
		}
		rm += time.Since(t)
		iters++
		if left, err := e.containers(); err != nil || len(left) > 0 {
			b.Fatalf("%s: %d containers left after rm -f (%v)", e.name, len(left), err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(rm.Nanoseconds())/float64(iters), "rm-ns/op")
	cpu.report(b, iters)
	med := func(f func(memory) int) float64 {
		v := make([]int, len(rss))
		for i, m := range rss {
			v[i] = f(m)
		}
		slices.Sort(v)
		return float64(v[len(v)/2]+v[(len(v)-1)/2]) / 2
	}
	b.ReportMetric(med(func(m memory) int { return m.rss }), "rss-kB")
	b.ReportMetric(med(func(m memory) int { return m.anon }), "anon-kB")
	b.ReportMetric(med(func(m memory) int { return m.pss }), "pss-kB")
	if len(e.daemons) > 0 {
		b.ReportMetric(float64(daemons), "daemon-rss-kB")
	}
	b.Logf("%s: monitor %s", e.name, rss[0].cmd)
}

// busyboxTar writes the busybox root of internal/testenv (busybox-static,
// its applet links, /etc/passwd and /etc/group) as a plain tar, the file
// all three engines import.
func busyboxTar(b *testing.B) string {
	rc, err := testenv.Layer(b, testenv.Uncompressed, testenv.BusyboxRootfs(b)...).Uncompressed()
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	p := filepath.Join(b.TempDir(), "busybox.tar")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, rc); err != nil {
		b.Fatal(err)
	}
	return p
}

// storeDir makes a fresh directory for an engine's store, removed (what is
// mounted under it first) at the end of the benchmark.
func storeDir(b *testing.B, name string) string {
	dir, err := os.MkdirTemp("", "berth-bench-"+name+"-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { removeStore(dir) })
	return dir
}

// importImage imports tarball as benchImage, or marks e skipped.
func importImage(e *engineUnderTest, tarball string) {
	if _, err := e.run(0, "import", tarball, benchImage); err != nil {
		e.skip = "import: " + err.Error()
	}
}

func berthEngine(b *testing.B, tarball string, g *cpuGroup) *engineUnderTest {
	e := &engineUnderTest{name: "berth", monitor: "shim --monitor", cpu: g}
	if err := g.enter(); err != nil {
		b.Fatal(err)
	}
	for _, rt := range runtimes {
		if rt.name == "berth" {
			e.skip = rt.skip
			// rt.path is berth-runtime, a link to berth.
			e.bin = filepath.Join(filepath.Dir(rt.path), "berth")
		}
	}
	if e.skip != "" {
		return e
	}
	dir := storeDir(b, "berth")
	e.args = []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "overlay"}
	// Cleanups run last-in first-out: containers go before the store.
	b.Cleanup(e.removeAll)
	importImage(e, tarball)
	return e
}

func podmanEngine(b *testing.B, tarball string, g *cpuGroup) *engineUnderTest {
	e := &engineUnderTest{name: "podman", bin: "podman", monitor: "conmon", rmArgs: []string{"-t", "0"}, cpu: g}
	if err := g.enter(); err != nil {
		b.Fatal(err)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		e.skip = "podman is not installed"
		return e
	}
	dir := storeDir(b, "podman")
	// As runtime/interop_test.go and BenchmarkPull: no default ulimits
	// (which this machine refuses), cgroupfs, events to a file. runc, as
	// docker uses: Debian's default crun refuses the cgroup v1 hybrid
	// layout of the host.
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	e.env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	e.args = []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--runtime", "runc"}
	b.Cleanup(e.removeAll)
	importImage(e, tarball)
	return e
}

// dockerCLI is Debian's docker.io client, which matches its dockerd;
// another docker on PATH (such as a newer CLI in /usr/local/bin) only if
// that one is missing.
func dockerCLI() string {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	p, _ := exec.LookPath("docker")
	return p
}

// dockerEngine starts a dockerd of its own (private data and exec roots,
// socket and pidfile; its default bridge docker0 is made in the
// benchmark's network namespace) and stops it at the end.
func dockerEngine(b *testing.B, tarball string, g *cpuGroup) *engineUnderTest {
	e := &engineUnderTest{name: "docker", bin: dockerCLI(), monitor: "containerd-shim-runc-v2", cpu: g}
	// dockerd, containerd and the shims count in docker's group.
	if err := g.enter(); err != nil {
		b.Fatal(err)
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil || e.bin == "" {
		e.skip = "docker.io is not installed (dockerd and docker)"
		return e
	}
	dir := storeDir(b, "docker")
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	sock := "unix://" + filepath.Join(dir, "docker.sock")
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(dockerd, "--config-file", conf, "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", sock, "--storage-driver", "overlay2", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.skip = "dockerd: " + err.Error()
		return e
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	e.daemons = []int{cmd.Process.Pid}
	e.env = append(os.Environ(), "DOCKER_HOST="+sock, "DOCKER_CONFIG="+filepath.Join(dir, "config"))
	// Containers go before the daemon (cleanups run last-in first-out).
	b.Cleanup(e.removeAll)
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := e.run(0, "version")
		if err == nil {
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			e.skip = "dockerd exited:\n" + firstLines(log, 20)
			return e
		default:
		}
		if time.Now().After(deadline) {
			e.skip = "dockerd did not answer in 60 s: " + err.Error()
			return e
		}
		time.Sleep(200 * time.Millisecond)
	}
	importImage(e, tarball)
	return e
}
