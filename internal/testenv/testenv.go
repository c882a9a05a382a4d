// Package testenv holds what berth's tests share: root gating and busybox
// bundles built from Debian's busybox-static, so that every test runs real
// containers without a network.
package testenv

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// RequiresRoot skips t unless the test runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("test requires root")
	}
}

// RequiresBusybox skips t unless a static busybox is installed.
func RequiresBusybox(t testing.TB) {
	t.Helper()
	out, err := exec.Command("file", "-L", BusyboxPath).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "static") {
		if _, err := os.Stat(BusyboxPath); err != nil {
			t.Skipf("busybox-static not installed: %v", err)
		}
	}
}

// Rootfs fills dir with a busybox-static root filesystem: /bin/busybox,
// a link per applet in /bin, and the directories a container expects.
func Rootfs(t testing.TB, dir string) {
	t.Helper()
	RequiresBusybox(t)
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "tmp", "root", "var", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	data, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		os.Symlink("busybox", filepath.Join(dir, "bin", applet))
	}
	os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/tmp:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc", "group"), []byte("root:x:0:\nusers:x:100:user\nnogroup:x:65534:\nuser:x:1000:\n"), 0o644)
}

// Bundle creates an OCI bundle in a fresh temporary directory: a busybox
// rootfs and a config.json from Spec(args), changed by edit if it is not
// nil. It returns the bundle directory.
func Bundle(t testing.TB, edit func(*specs.Spec), args ...string) string {
	t.Helper()
	dir := t.TempDir()
	Rootfs(t, filepath.Join(dir, "rootfs"))
	s := Spec(args...)
	if edit != nil {
		edit(s)
	}
	WriteSpec(t, dir, s)
	return dir
}

// WriteSpec writes s as dir/config.json.
func WriteSpec(t testing.TB, dir string, s *specs.Spec) {
	t.Helper()
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Spec returns the runtime spec `berth runtime spec` writes (runc's), with
// args as the process and no terminal.
func Spec(args ...string) *specs.Spec {
	if len(args) == 0 {
		args = []string{"sh"}
	}
	s := runtime.DefaultSpec(false, 0, 0)
	s.Process.Terminal = false
	s.Process.Args = args
	return s
}
