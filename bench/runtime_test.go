package bench

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// nsEnv marks the benchmark process as re-executed in a private mount
// namespace with the cgroup v1 hybrid layout's cgroup2 mount removed.
const nsEnv = "BERTH_BENCH_MOUNTNS"

// ociVersion is the config.json version of the benchmark bundle.
const ociVersion = "1.0.2"

const (
	cgroup2Magic = 0x63677270 // CGROUP2_SUPER_MAGIC
	unifiedMount = "/sys/fs/cgroup/unified"
)

// runtimeUnderTest is one OCI runtime with runc's command line.
type runtimeUnderTest struct {
	name string
	path string // absolute path of the binary
	skip string // why it is not measured, if it is not
}

var (
	runtimes []runtimeUnderTest
	seq      atomic.Int64
	// nsNote tells how the process's mount namespace was set up, for the
	// log of every benchmark.
	nsNote string
)

// benchRequested tells whether this run of the test binary runs any
// benchmark: TestMain does its slow set-up only then, so that the module's
// plain `go test ./...` costs nothing here.
func benchRequested() bool {
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != ""
}

// hybrid tells whether the host has the cgroup v1 hybrid layout: v1
// controllers under a tmpfs at /sys/fs/cgroup and a cgroup2 hierarchy
// mounted at /sys/fs/cgroup/unified.
func hybrid() bool {
	var root, unified syscall.Statfs_t
	if syscall.Statfs("/sys/fs/cgroup", &root) != nil || syscall.Statfs(unifiedMount, &unified) != nil {
		return false
	}
	return root.Type != cgroup2Magic && unified.Type == cgroup2Magic
}

// reexecInMountNS replaces the process by itself run in a private mount
// namespace without the hybrid layout's cgroup2 mount, the only layout
// crun 1.8 accepts on such a host. Every runtime is then measured in that
// same namespace: see README.md. It returns only if it could not.
func reexecInMountNS() string {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return "unshare(1) not found"
	}
	self, err := os.Executable()
	if err != nil {
		return err.Error()
	}
	argv := append([]string{"unshare", "--mount", "--propagation", "private",
		"sh", "-c", `umount ` + unifiedMount + ` || echo "bench: umount ` + unifiedMount + ` failed" >&2; exec "$0" "$@"`, self}, os.Args[1:]...)
	env := append(os.Environ(), nsEnv+"=1")
	return syscall.Exec(unshare, argv, env).Error()
}

func TestMain(m *testing.M) {
	flag.Parse()
	if benchRequested() && os.Geteuid() == 0 {
		switch {
		case os.Getenv(nsEnv) != "" && !hybrid():
			nsNote = "all runtimes run in a private mount namespace without " + unifiedMount
		case os.Getenv(nsEnv) != "":
			nsNote = "in a private mount namespace, but " + unifiedMount + " is still mounted: crun will fail"
		case hybrid():
			why := reexecInMountNS()
			nsNote = "could not leave the hybrid layout (" + why + "): crun will fail"
		default:
			nsNote = "host mount namespace"
		}
		findRuntimes()
	}
	os.Exit(m.Run())
}

// repoRoot is the top of the repository: the benchmark runs in bench/.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return ".."
	}
	return filepath.Dir(wd)
}

// rotateEnv, an integer k, makes the sub-benchmarks start at the k-th
// runtime (modulo their number): run.sh changes it from one process to the
// next, so that no runtime always runs first, right after the set-up.
const rotateEnv = "BERTH_BENCH_ROTATE"

// findRuntimes fills runtimes with berth, built here from the work tree,
// then runc and crun from PATH, rotated by $BERTH_BENCH_ROTATE.
func findRuntimes() {
	all := []runtimeUnderTest{buildBerth()}
	for _, name := range []string{"runc", "crun"} {
		rt := runtimeUnderTest{name: name}
		if p, err := exec.LookPath(name); err != nil {
			rt.skip = name + " is not installed"
		} else {
			rt.path = p
		}
		all = append(all, rt)
	}
	k, _ := strconv.Atoi(os.Getenv(rotateEnv))
	k = ((k % len(all)) + len(all)) % len(all)
	runtimes = append(all[k:], all[:k]...)
}

// berthEnv names a berth runtime binary to time instead of building one:
// run.sh builds berth once for all its rounds and passes it so, and it can
// point at any other build.
const berthEnv = "BERTH_BENCH_BERTH"

// buildBerth builds bin/berth with `make berth` and links bin/berth-runtime
// to it if that link is missing; berth's runtime is what berth does when
// called by that name. With $BERTH_BENCH_BERTH set it builds nothing and
// returns that binary.
func buildBerth() runtimeUnderTest {
	rt := runtimeUnderTest{name: "berth"}
	if p := os.Getenv(berthEnv); p != "" {
		rt.path = p
		if _, err := os.Stat(p); err != nil {
			rt.skip = berthEnv + ": " + err.Error()
		}
		return rt
	}
	root := repoRoot()
	bin := filepath.Join(root, "bin")
	rt.path = filepath.Join(bin, "berth-runtime")
	// The Makefile's build, the one users get (static, stripped).
	cmd := exec.Command("make", "-s", "berth")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		rt.skip = fmt.Sprintf("make berth: %v\n%s", err, firstLines(out, 10))
		return rt
	}
	if _, err := os.Lstat(rt.path); os.IsNotExist(err) {
		if err := os.Symlink("berth", rt.path); err != nil {
			rt.skip = err.Error()
		}
	}
	return rt
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}

// run runs the container id of bundle to its end with rt and returns the
// CPU time (user and system) the runtime and the descendants it reaped
// used, or an error, with what the runtime printed, unless it exited with
// status want.
func run(rt runtimeUnderTest, root, bundle, id string, want int) (time.Duration, error) {
	cmd := exec.Command(rt.path, "--root", root, "run", "--bundle", bundle, id)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code, err = exit.ExitCode(), nil
	}
	if err != nil || code != want {
		return 0, fmt.Errorf("%s run %s: exit status %d, want %d (%v)\n%s", rt.name, id, code, want, err, firstLines(out.Bytes(), 20))
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// cleanRoot deletes whatever containers a failed run left in root.
func cleanRoot(rt runtimeUnderTest, root string) {
	out, err := exec.Command(rt.path, "--root", root, "list", "-q").Output()
	if err != nil {
		return
	}
	for _, id := range strings.Fields(string(out)) {
		exec.Command(rt.path, "--root", root, "delete", "-f", id).Run()
	}
}

// BenchmarkRuntimeRun times `<runtime> --root <tmp> run --bundle <bundle>
// <id>` of one busybox bundle whose process is /bin/true, without a
// terminal, for berth, runc and crun: the whole life of a container, from
// reading config.json to deleting its state after the process exits. Every
// iteration must exit 0.
//
// go test -count=N runs each sub-benchmark N times in a row; run.sh instead
// runs the test binary N times with -count=1, each time with the runtimes
// in a rotated order, so that drift in the machine's load reaches each
// runtime alike.
func BenchmarkRuntimeRun(b *testing.B) {
	testenv.RequiresRoot(b)
	if runtimes == nil {
		b.Skip("runtimes not set up: TestMain runs only as root with -bench")
	}
	b.Log(nsNote)
	// One bundle for all: its root is read-only and nothing writes to it.
	// Its ociVersion is one all three accept: crun 1.8 refuses the
	// "1.3.0" of the runtime-spec module berth builds with, and the spec
	// uses nothing newer than 1.0.2.
	version := func(s *specs.Spec) { s.Version = ociVersion }
	bundle := testenv.Bundle(b, version, "/bin/true")
	// A container exiting 7 shows that a runtime runs the process and
	// reports how it ended, so that a runtime that exits 0 without doing
	// the work is not timed as a fast one.
	probe := testenv.Bundle(b, version, "/bin/sh", "-c", "exit 7")
	for _, rt := range runtimes {
		b.Run(rt.name, func(b *testing.B) {
			if rt.skip != "" {
				b.Skip(rt.skip)
			}
			root := b.TempDir()
			b.Cleanup(func() { cleanRoot(rt, root) })
			id := func() string { return fmt.Sprintf("bench-%d-%s-%d", os.Getpid(), rt.name, seq.Add(1)) }
			// Untimed: the probe, then one run that warms the page cache
			// for the binary. Berth's runtime is work in progress: one
			// that fails here is skipped, not failed.
			_, err := run(rt, root, probe, id(), 7)
			if err == nil {
				_, err = run(rt, root, bundle, id(), 0)
			}
			if err != nil {
				if rt.name == "berth" {
					b.Skipf("berth does not run the bundles yet: %v", err)
				}
				b.Fatal(err)
			}
			var cpu time.Duration
			n := 0
			for b.Loop() {
				c, err := run(rt, root, bundle, id(), 0)
				if err != nil {
					b.Fatal(err)
				}
				cpu += c
				n++
			}
			// CPU time moves much less than wall time with the load of
			// the rest of the machine. It misses what the runtime leaves
			// to processes it does not reap itself.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
		})
	}
}
