package runtime_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
)

// rootfsTar builds a busybox root filesystem and returns it as an
// uncompressed tar in dir.
func rootfsTar(t *testing.T, dir string) string {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	testenv.Rootfs(t, rootfs)
	out := filepath.Join(dir, "layer.tar")
	if b, err := exec.Command("tar", "-C", rootfs, "-cf", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar rootfs: %v: %s", err, b)
	}
	return out
}

// unmountUnder lazily unmounts whatever a tool left mounted below dir.
func unmountUnder(dir string) {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			syscall.Unmount(f[4], syscall.MNT_DETACH)
		}
	}
}

// tool runs name args with env added, failing the test on a timeout.
func tool(t *testing.T, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %v: timed out: %s", name, args, out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func TestPodmanInterop(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresBusybox(t)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed")
	}
	dir, err := os.MkdirTemp("", "berth-podman")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"), 0o644)
	env := []string{"CONTAINERS_CONF=" + conf}
	base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"), "--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--runtime", berthRuntime}
	podman := func(args ...string) (string, int) {
		t.Helper()
		return tool(t, env, "podman", append(append([]string{}, base...), args...)...)
	}
	t.Cleanup(func() {
		podman("rm", "-af", "-t", "0")
		unmountUnder(dir)
		os.RemoveAll(dir)
	})
	layer := rootfsTar(t, t.TempDir())
	if out, code := podman("import", layer, "localhost/berth-bb:test"); code != 0 {
		t.Skipf("podman import failed (podman unusable here): %s", out)
	}
	run := func(args ...string) (string, int) {
		return podman(append([]string{"run", "--rm", "--network", "none", "localhost/berth-bb:test"}, args...)...)
	}
	if out, code := run("true"); code != 0 {
		t.Fatalf("podman run --rm true = exit %d: %s", code, out)
	}
	if out, code := run("sh", "-c", "echo hello-podman; hostname >/dev/null; exit 7"); code != 7 || !strings.Contains(out, "hello-podman") {
		t.Errorf("podman run = exit %d, %q; want 7 and the output", code, out)
	}
	out, code := podman("run", "--rm", "-t", "--network", "none", "localhost/berth-bb:test", "tty")
	if code != 0 || !strings.Contains(out, "/dev/pts/0") {
		t.Errorf("podman run -t tty = exit %d, %q", code, out)
	}
	// A detached container through exec, pause, top, stop and rm.
	out, code = podman("run", "-d", "--network", "none", "--name", "berth-bg", "localhost/berth-bb:test", "sleep", "1000")
	if code != 0 {
		t.Fatalf("podman run -d = exit %d: %s", code, out)
	}
	if out, code := podman("exec", "berth-bg", "sh", "-c", "echo in-exec; exit 3"); code != 3 || !strings.Contains(out, "in-exec") {
		t.Errorf("podman exec = exit %d, %q", code, out)
	}
	for _, args := range [][]string{{"pause", "berth-bg"}, {"unpause", "berth-bg"}, {"top", "berth-bg"}, {"stop", "-t", "1", "berth-bg"}, {"rm", "berth-bg"}} {
		if out, code := podman(args...); code != 0 {
			t.Errorf("podman %v = exit %d: %s", args, code, out)
		}
	}
}

// dockerArchive writes a docker-archive image (docker save's format) of a
// busybox rootfs named ref and returns its path.
func dockerArchive(t *testing.T, ref string) string {
	t.Helper()
	dir := t.TempDir()
	layer := rootfsTar(t, dir)
	data, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	cfg := fmt.Sprintf(`{"architecture":%q,"os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}`, goarch(), hex.EncodeToString(sum[:]))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(fmt.Sprintf(`[{"Config":"config.json","RepoTags":[%q],"Layers":["layer.tar"]}]`, ref)), 0o644)
	out := filepath.Join(t.TempDir(), "image.tar")
	if b, err := exec.Command("tar", "-C", dir, "-cf", out, "manifest.json", "config.json", "layer.tar").CombinedOutput(); err != nil {
		t.Fatalf("tar image: %v: %s", err, b)
	}
	return out
}

func goarch() string {
	out, _ := exec.Command("go", "env", "GOARCH").Output()
	if a := strings.TrimSpace(string(out)); a != "" {
		return a
	}
	return "amd64"
}

func TestContainerdInterop(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresBusybox(t)
	for _, tool := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir, err := os.MkdirTemp("", "berth-ctrd")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	conf := filepath.Join(dir, "config.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")), 0o644)
	var logb bytes.Buffer
	daemon := exec.Command("containerd", "--config", conf)
	daemon.Stdout, daemon.Stderr = &logb, &logb
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	runcRoot := filepath.Join(dir, "runc")
	ctr := func(args ...string) (string, int) {
		t.Helper()
		return tool(t, nil, "ctr", append([]string{"--address", sock, "--namespace", "berthtest"}, args...)...)
	}
	t.Cleanup(func() {
		for _, c := range []string{"berth-fg", "berth-bg"} {
			ctr("task", "kill", "-s", "KILL", c)
			time.Sleep(200 * time.Millisecond)
			ctr("task", "delete", "-f", c)
			ctr("container", "delete", c)
		}
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		unmountUnder(dir)
		os.RemoveAll(dir)
		if t.Failed() {
			t.Logf("containerd log:\n%s", logb.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, code := ctr("version"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not come up: %s", logb.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	img := dockerArchive(t, "localhost/berth-bb:test")
	if out, code := ctr("images", "import", "--snapshotter", "native", img); code != 0 {
		t.Fatalf("ctr images import = exit %d: %s", code, out)
	}
	runFlags := []string{"--snapshotter", "native", "--runtime", "io.containerd.runc.v2", "--runc-binary", berthRuntime, "--runc-root", runcRoot}
	args := append(append([]string{"run", "--rm"}, runFlags...), "localhost/berth-bb:test", "berth-fg", "sh", "-c", "echo hello-ctr; exit 3")
	if out, code := ctr(args...); code != 3 || !strings.Contains(out, "hello-ctr") {
		t.Errorf("ctr run --rm = exit %d, %q; want 3 and the output", code, out)
	}
	args = append(append([]string{"run", "-d"}, runFlags...), "localhost/berth-bb:test", "berth-bg", "sleep", "1000")
	if out, code := ctr(args...); code != 0 {
		t.Fatalf("ctr run -d = exit %d: %s", code, out)
	}
	if out, code := ctr("task", "exec", "--exec-id", "e1", "berth-bg", "sh", "-c", "echo in-exec; exit 4"); code != 4 || !strings.Contains(out, "in-exec") {
		t.Errorf("ctr task exec = exit %d, %q", code, out)
	}
	status := func() string {
		out, _ := ctr("task", "ls")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "berth-bg" {
				return f[2]
			}
		}
		return ""
	}
	if s := status(); s != "RUNNING" {
		t.Errorf("task status = %q, want RUNNING", s)
	}
	ctr("task", "pause", "berth-bg")
	if s := status(); s != "PAUSED" {
		t.Errorf("task status after pause = %q", s)
	}
	ctr("task", "resume", "berth-bg")
	if s := status(); s != "RUNNING" {
		t.Errorf("task status after resume = %q", s)
	}
	if out, code := ctr("task", "kill", "-s", "KILL", "berth-bg"); code != 0 {
		t.Errorf("ctr task kill = exit %d: %s", code, out)
	}
	deadline = time.Now().Add(20 * time.Second)
	for status() != "STOPPED" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if out, code := ctr("task", "delete", "berth-bg"); code != 0 {
		t.Errorf("ctr task delete = exit %d: %s", code, out)
	}
	if out, code := ctr("container", "delete", "berth-bg"); code != 0 {
		t.Errorf("ctr container delete = exit %d: %s", code, out)
	}
	// The shim's runtime root holds nothing any more.
	if entries, _ := os.ReadDir(filepath.Join(runcRoot, "berthtest")); len(entries) != 0 {
		t.Errorf("runtime state left under %s: %v", runcRoot, entries)
	}
}
