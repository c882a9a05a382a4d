package spec_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/spec"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// bin is the directory of a fresh build of berth, made only as root.
var bin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run()
		}
		tmp, err := os.MkdirTemp("", "berth-spec-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		build := exec.Command("make", "-s", "-C", "..", "berth", "BIN="+tmp)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build berth:", err)
			return 1
		}
		bin = tmp
		return m.Run()
	}()
	os.Exit(code)
}

// TestRunDockerDefaults runs a generated spec with berth's runtime and
// looks at Docker's defaults from inside the container.
func TestRunDockerDefaults(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresBusybox(t)
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	testenv.Rootfs(t, rootfs)
	script := `grep CapEff /proc/self/status
mount -t tmpfs none /tmp 2>&1; echo mount=$?
echo kcore=$(cat /proc/kcore /proc/keys 2>/dev/null | wc -c)
cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null
id -u; id -g; echo HOME=$HOME`
	id := fmt.Sprintf("spec%d", os.Getpid())
	s, err := spec.Generate(ocispec.ImageConfig{Cmd: []string{"sh", "-c", script}}, spec.Request{
		Rootfs: rootfs, User: "user", Users: spec.RootfsUsers(rootfs), Memory: 64 << 20,
		CgroupsPath: "/berth/" + id, Hostname: "spec",
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WriteSpec(t, bundle, s)
	root := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "berth-runtime"), "--root", root, "run", "--bundle", bundle, id)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { exec.Command(filepath.Join(bin, "berth-runtime"), "--root", root, "delete", "-f", id).Run() })
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	got := string(out)
	t.Logf("inside:\n%s", got)
	// Docker's 14 capabilities: bits 0,1,3,4,5,6,7,8,10,13,18,27,29,31.
	for _, want := range []string{
		"CapEff:\t0000000000000000\n", // a non-root user keeps no effective capabilities
		"mount=", "kcore=0\n", "67108864\n", "1000\n1000\n", "HOME=/tmp\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, "mount=0") || !strings.Contains(got, "ermission denied") && !strings.Contains(got, "Operation not permitted") {
		t.Errorf("mount did not fail with EPERM")
	}
}

// TestRunRootCaps checks the capability set of root in a default container.
func TestRunRootCaps(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresBusybox(t)
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	testenv.Rootfs(t, rootfs)
	id := fmt.Sprintf("specroot%d", os.Getpid())
	s, err := spec.Generate(ocispec.ImageConfig{Cmd: []string{"sh", "-c", "grep CapEff /proc/self/status; mount -t tmpfs none /tmp 2>/dev/null || echo mount failed"}}, spec.Request{Rootfs: rootfs, CgroupsPath: "/berth/" + id})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WriteSpec(t, bundle, s)
	root := t.TempDir()
	out, err := exec.Command(filepath.Join(bin, "berth-runtime"), "--root", root, "run", "--bundle", bundle, id).CombinedOutput()
	t.Cleanup(func() { exec.Command(filepath.Join(bin, "berth-runtime"), "--root", root, "delete", "-f", id).Run() })
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	// CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6,
	// SETUID 7, SETPCAP 8, NET_BIND_SERVICE 10, NET_RAW 13, SYS_CHROOT 18,
	// MKNOD 27, AUDIT_WRITE 29, SETFCAP 31.
	if want := "CapEff:\t00000000a80425fb\nmount failed\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}
