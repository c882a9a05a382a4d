package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/engine"
	"github.com/berth-dev/berth/internal/testenv"
	"golang.org/x/sys/unix"
)

// pullImageEnv names the image BenchmarkPull pulls. pull.sh sets it from
// bench/mkdebian.sh; without it the benchmark runs mkdebian.sh itself
// (which builds the image the first time) and stops the registry after.
const pullImageEnv = "BERTH_BENCH_PULL_IMAGE"

// puller is one way of pulling the image into an empty store: pull runs
// the timed command with dir (empty) as its whole state, check tells
// whether the result is there (untimed).
type puller struct {
	name  string
	skip  string
	path  string // berth's binary
	pull  func(dir, image string) (*exec.Cmd, error)
	check func(dir, image string, deep bool) error
}

// BenchmarkPull times one pull of a multi-layer Debian image (see
// mkdebian.sh) from a registry on 127.0.0.1 into an empty store, by
// berth, podman (overlay storage) and skopeo copy + umoci raw unpack. One
// iteration is one command (two for skopeo+umoci) against a fresh
// directory; syncing the written data, checking the result and removing
// the store are not timed. After each command the benchmark runs sync(1)
// and reports how long it took as sync-ns/op: the write-back a pull left
// for later.
func BenchmarkPull(b *testing.B) {
	testenv.RequiresRoot(b)
	if runtimes == nil {
		b.Skip("berth not set up: TestMain runs only as root with -bench")
	}
	image := os.Getenv(pullImageEnv)
	if image == "" {
		out, err := exec.Command(filepath.Join(repoRoot(), "bench", "mkdebian.sh")).Output()
		if err != nil {
			b.Fatalf("mkdebian.sh: %v", err)
		}
		image = strings.TrimSpace(string(out))
		b.Cleanup(func() { exec.Command(filepath.Join(repoRoot(), "bench", "mkdebian.sh"), "stop").Run() })
	}
	b.Log(nsNote, "; image ", image)
	pullers := []puller{berthPuller(), podmanPuller(), skopeoUmociPuller()}
	k, _ := strconv.Atoi(os.Getenv(rotateEnv))
	k = ((k % len(pullers)) + len(pullers)) % len(pullers)
	pullers = append(pullers[k:], pullers[:k]...)
	for _, p := range pullers {
		b.Run(p.name, func(b *testing.B) {
			if p.skip != "" {
				b.Skip(p.skip)
			}
			parent, err := os.MkdirTemp("", "berth-bench-pull-")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { removeStore(parent) })
			seq := 0
			// once pulls into a fresh directory; only the pull is timed
			// (b.Loop requires the timer running when it is called, so
			// once returns with it running).
			once := func() (cpu, syncTime time.Duration, err error) {
				seq++
				dir := filepath.Join(parent, strconv.Itoa(seq))
				if err := os.Mkdir(dir, 0o700); err != nil {
					return 0, 0, err
				}
				cmds, err := runPull(p, dir, image)
				b.StopTimer()
				defer b.StartTimer()
				if err != nil {
					return 0, 0, err
				}
				for _, c := range cmds {
					cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
				}
				t := time.Now()
				unix.Sync()
				syncTime = time.Since(t)
				err = p.check(dir, image, seq == 1)
				removeStore(dir)
				unix.Sync()
				return cpu, syncTime, err
			}
			// Untimed (b.Loop resets the timer): one pull checked in
			// depth, which also brings the registry's blobs and the
			// puller's binaries into the page cache.
			if _, _, err := once(); err != nil {
				b.Fatal(err)
			}
			var cpu, syncTime time.Duration
			n := 0
			for b.Loop() {
				c, s, err := once()
				if err != nil {
					b.Fatal(err)
				}
				cpu += c
				syncTime += s
				n++
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
			b.ReportMetric(float64(syncTime.Nanoseconds())/float64(n), "sync-ns/op")
		})
	}
}

// runPull runs p's command(s) for one pull; for skopeo+umoci, pull returns
// the first and a second call (dir, "") the next.
func runPull(p puller, dir, image string) ([]*exec.Cmd, error) {
	var cmds []*exec.Cmd
	for arg := image; ; arg = "" {
		cmd, err := p.pull(dir, arg)
		if err != nil || cmd == nil {
			return cmds, err
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return cmds, fmt.Errorf("%s %s: %v\n%s", p.name, strings.Join(cmd.Args[1:], " "), err, firstLines(out.Bytes(), 20))
		}
		cmds = append(cmds, cmd)
	}
}

func berthPuller() puller {
	p := puller{name: "berth"}
	for _, rt := range runtimes {
		if rt.name == "berth" {
			p.skip = rt.skip
			// rt.path is bin/berth-runtime, a link to berth.
			p.path = filepath.Join(filepath.Dir(rt.path), "berth")
		}
	}
	bin := p.path
	cfg := func(dir string) engine.Config {
		return engine.Config{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), StorageDriver: "overlay"}
	}
	p.pull = func(dir, image string) (*exec.Cmd, error) {
		if image == "" {
			return nil, nil
		}
		c := cfg(dir)
		return exec.Command(bin, "--root", c.Root, "--runroot", c.RunRoot, "--storage-driver", c.StorageDriver, "pull", "-q", image), nil
	}
	p.check = func(dir, image string, deep bool) error {
		e, err := engine.New(cfg(dir))
		if err != nil {
			return err
		}
		defer e.Close()
		ctx := context.Background()
		rec, err := e.FindImage(ctx, image)
		if err != nil {
			return err
		}
		if !deep {
			return nil
		}
		img, err := e.ResolveImage(ctx, rec)
		if err != nil {
			return err
		}
		mounts, err := e.ViewImage(ctx, "bench-check", img)
		if err != nil {
			return err
		}
		defer e.RemoveView(ctx, "bench-check")
		if len(mounts) != 1 {
			return fmt.Errorf("berth: %d mounts for the image's root, want 1", len(mounts))
		}
		target := filepath.Join(dir, "mnt")
		if err := os.Mkdir(target, 0o700); err != nil {
			return err
		}
		if err := mounts[0].Mount(target); err != nil {
			return err
		}
		defer unix.Unmount(target, unix.MNT_DETACH)
		return hasApt("berth", target)
	}
	return p
}

func podmanPuller() puller {
	p := puller{name: "podman"}
	if _, err := exec.LookPath("podman"); err != nil {
		p.skip = "podman is not installed"
		return p
	}
	args := func(dir string, more ...string) []string {
		return append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
			"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs"}, more...)
	}
	// As runtime/interop_test.go: no default ulimits (which this machine
	// refuses), cgroupfs, events to a file.
	env := func(dir string) []string {
		conf := filepath.Join(dir, "containers.conf")
		os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"), 0o644)
		return append(os.Environ(), "CONTAINERS_CONF="+conf)
	}
	p.pull = func(dir, image string) (*exec.Cmd, error) {
		if image == "" {
			return nil, nil
		}
		cmd := exec.Command("podman", args(dir, "pull", "-q", "--tls-verify=false", image)...)
		cmd.Env = env(dir)
		return cmd, nil
	}
	p.check = func(dir, image string, deep bool) error {
		cmd := exec.Command("podman", args(dir, "images", "--format", "{{.Repository}}:{{.Tag}}")...)
		cmd.Env = env(dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("podman images: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), image) {
			return fmt.Errorf("podman images does not list %s:\n%s", image, out)
		}
		if !deep {
			return nil
		}
		cmd = exec.Command("podman", args(dir, "image", "mount", image)...)
		cmd.Env = env(dir)
		out, err = cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("podman image mount: %v\n%s", err, out)
		}
		return hasApt("podman", strings.TrimSpace(string(out)))
	}
	return p
}

func skopeoUmociPuller() puller {
	p := puller{name: "skopeo+umoci"}
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			p.skip = tool + " is not installed"
			return p
		}
	}
	p.pull = func(dir, image string) (*exec.Cmd, error) {
		layout := "oci:" + filepath.Join(dir, "oci") + ":bench"
		if image != "" {
			return exec.Command("skopeo", "copy", "-q", "--src-tls-verify=false", "docker://"+image, layout), nil
		}
		if _, err := os.Stat(filepath.Join(dir, "rootfs")); err == nil {
			return nil, nil
		}
		// raw unpack: the root filesystem only, without umoci unpack's
		// mtree manifest (a hash of every file) that the others do not
		// make.
		return exec.Command("umoci", "raw", "unpack", "--image", filepath.Join(dir, "oci")+":bench", filepath.Join(dir, "rootfs")), nil
	}
	p.check = func(dir, image string, deep bool) error {
		return hasApt("skopeo+umoci", filepath.Join(dir, "rootfs"))
	}
	return p
}

func hasApt(name, rootfs string) error {
	if fi, err := os.Stat(filepath.Join(rootfs, "usr/bin/apt")); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: no /usr/bin/apt in the pulled root filesystem %s (%v)", name, rootfs, err)
	}
	return nil
}

// removeStore unmounts whatever is mounted under dir (podman's overlay
// driver bind-mounts its own directory), deepest first, and removes dir.
func removeStore(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err == nil {
		var mounts []string
		s := bufio.NewScanner(f)
		for s.Scan() {
			fields := strings.Fields(s.Text())
			if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
				mounts = append(mounts, fields[4])
			}
		}
		f.Close()
		for i := len(mounts) - 1; i >= 0; i-- {
			unix.Unmount(mounts[i], unix.MNT_DETACH)
		}
	}
	os.RemoveAll(dir)
}
