package runtime_test

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// TestSealedInitExe is the CVE-2019-5736 regression test: the init runs
// from a file nobody can write through /proc/<pid>/exe.
func TestSealedInitExe(t *testing.T) {
	r := newRT(t)
	bin, err := filepath.EvalSymlinks(berthRuntime)
	if err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, bin)
	b := testenv.Bundle(t, nil, sleeper()...)
	cid := id(t)
	r.create(b, cid)
	pid := r.state(cid).Pid
	exe := "/proc/" + strconv.Itoa(pid) + "/exe"
	link, err := os.Readlink(exe)
	// Either a sealed memfd copy or the binary seen through a detached,
	// upper-less overlayfs (runtime/exeseal.go); never the host's path.
	memfd := strings.Contains(link, "memfd:berth-init")
	if err != nil || (!memfd && link != "/"+filepath.Base(bin)) {
		t.Errorf("readlink %s = %q, %v; want memfd:berth-init or /%s on a private overlay", exe, link, err, filepath.Base(bin))
	}
	for _, flags := range []int{os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_APPEND, os.O_WRONLY | os.O_TRUNC} {
		if f, err := os.OpenFile(exe, flags, 0); err == nil {
			_, werr := f.Write([]byte("pwned"))
			f.Close()
			if werr == nil {
				t.Errorf("wrote to the init's exe opened with flags %#x", flags)
			}
		}
	}
	// Reading it back gives the binary itself: a copy, not the file.
	if data, err := os.ReadFile(exe); err != nil || sha256.Sum256(data) != before {
		t.Errorf("init's exe is not a faithful copy (%v)", err)
	}
	// A memfd carries write seals.
	if f, err := os.Open(exe); err == nil && memfd {
		seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
		f.Close()
		if err != nil || seals&unix.F_SEAL_WRITE == 0 || seals&unix.F_SEAL_SEAL == 0 {
			t.Errorf("init's exe seals = %#x, %v", seals, err)
		}
	}
	r.must("start", cid)

	// From inside.
	hammerExes(t, r, cid)
	// A privileged container with CAP_SYS_PTRACE tries its own init
	// during exec as well.
	if after := fileSum(t, bin); after != before {
		t.Fatalf("the host binary %s changed", bin)
	}
	res := r.run("exec", cid, "sh", "-c", "echo pwned > /proc/1/exe")
	if res.code == 0 {
		t.Errorf("writing /proc/1/exe from inside succeeded")
	}
	if after := fileSum(t, bin); after != before {
		t.Fatalf("the host binary %s changed", bin)
	}
}

// hammerExes runs a loop in container cid that writes to every
// /proc/N/exe it can see while execs come and go (an exec'd init is
// visible in the container's pid namespace before it runs the program),
// and fails t if any write went through.
func hammerExes(t *testing.T, r *rt, cid string) {
	t.Helper()
	attack := `while true; do for f in /proc/[0-9]*/exe; do echo pwned 2>/dev/null >> $f && echo "WROTE $f" >> /dev/shm/log; done; done`
	if code, out := r.runDetached("exec", "--detach", cid, "sh", "-c", attack); code != 0 {
		data, _ := os.ReadFile(out)
		t.Fatalf("exec --detach: %s", data)
	}
	for i := 0; i < 20; i++ {
		r.run("exec", cid, "true")
	}
	if out := r.run("exec", cid, "cat", "/dev/shm/log"); out.stdout != "" {
		t.Errorf("the container wrote to an exe: %s", out.stdout)
	}
}

// TestSealedInitExePrivileged repeats the attack from a container with
// every capability, as runc's CVE-2019-5736 exploit assumed.
func TestSealedInitExePrivileged(t *testing.T) {
	r := newRT(t)
	bin, _ := filepath.EvalSymlinks(berthRuntime)
	before := fileSum(t, bin)
	all := []string{"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"}
	cid, _ := r.startNew(func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
		s.Process.NoNewPrivileges = false
	}, sleeper()...)
	hammerExes(t, r, cid)
	if after := fileSum(t, bin); after != before {
		t.Fatalf("the host binary %s changed", bin)
	}
}

// TestCwdLeakedFD is the CVE-2024-21626 regression test: a cwd naming
// one of the runtime's own fds must not put the process outside the
// container.
func TestCwdLeakedFD(t *testing.T) {
	r := newRT(t)
	check := func(what string, res result) {
		t.Helper()
		if res.code == 0 {
			cwd := strings.TrimSpace(res.stdout)
			if !strings.HasPrefix(cwd, "/") || strings.Contains(cwd, "unreachable") || strings.Contains(res.stdout, "ESCAPED") {
				t.Errorf("%s: process cwd %q is outside the container", what, res.stdout)
			}
			return
		}
		if strings.Contains(res.stdout, "ESCAPED") {
			t.Errorf("%s: escaped: %q", what, res.stdout)
		}
	}
	// The process prints its cwd and whether the host's /etc/os-release
	// (not in the busybox rootfs) is reachable from it.
	probe := []string{"sh", "-c", `readlink /proc/self/cwd; for p in ../../../../../../etc/os-release ../../../../../../usr/bin; do test -e $p && echo ESCAPED $p; done; true`}
	for n := 3; n <= 12; n++ {
		cwd := "/proc/self/fd/" + strconv.Itoa(n)
		b := testenv.Bundle(t, func(s *specs.Spec) { s.Process.Cwd = cwd }, probe...)
		cid := id(t)
		snap := snapshotHost(t)
		code, outFile := r.runDetached("create", "--bundle", b, cid)
		if code != 0 {
			data, _ := os.ReadFile(outFile)
			t.Logf("create with cwd %s fails: %s", cwd, bytes.TrimSpace(data))
			snap.checkNothingLeft(t, r, cid, b)
			continue
		}
		r.must("start", cid)
		r.waitStatus(cid, "stopped")
		data, _ := os.ReadFile(outFile)
		check("create with cwd "+cwd, result{stdout: string(data)})
		r.must("delete", cid)
	}
	// exec --cwd, the same attack on a running container.
	cid, _ := r.startNew(nil, sleeper()...)
	for n := 3; n <= 12; n++ {
		cwd := "/proc/self/fd/" + strconv.Itoa(n)
		res := r.run(append([]string{"exec", "--cwd", cwd, cid}, probe...)...)
		t.Logf("exec --cwd %s: exit %d, %q, %q", cwd, res.code, res.stdout, strings.TrimSpace(res.stderr))
		check("exec --cwd "+cwd, res)
	}
}

// TestNoLeakedFDs checks that the container's processes get only their
// stdio: no fd of the runtime leaks in.
func TestNoLeakedFDs(t *testing.T) {
	r := newRT(t)
	want := "0\n1\n2\n3\n" // 3 is ls's own open directory
	res := r.runBundle(nil, "ls", "/proc/self/fd")
	if res.code != 0 || res.stdout != want {
		t.Errorf("run: ls /proc/self/fd = %q (%s), want %q", res.stdout, res.stderr, want)
	}
	cid, _ := r.startNew(nil, sleeper()...)
	if out := r.must("exec", cid, "ls", "/proc/self/fd"); out != want {
		t.Errorf("exec: ls /proc/self/fd = %q, want %q", out, want)
	}
	// The init's own fds (sleep, pid 1): stdio only.
	if out := r.must("exec", cid, "ls", "/proc/1/fd"); out != "0\n1\n2\n" {
		t.Errorf("exec: ls /proc/1/fd = %q", out)
	}
	// Through a terminal as well.
	out := r.run("exec", "--tty", cid, "ls", "-1", "/proc/self/fd")
	if got := strings.ReplaceAll(out.stdout, "\r", ""); got != want {
		t.Errorf("exec --tty: ls /proc/self/fd = %q", got)
	}
	// A created container's init holds nothing unexpected open but the
	// exec fifo (and not the state directory or the runtime's files).
	b := testenv.Bundle(t, nil, sleeper()...)
	c2 := id(t)
	r.create(b, c2)
	pid := r.state(c2).Pid
	entries, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	for _, e := range entries {
		link, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + e.Name())
		if strings.HasPrefix(link, r.root) && !strings.HasSuffix(link, "exec.fifo") || bytes.Contains([]byte(link), []byte("berth-test-bin")) {
			t.Errorf("created init holds fd %s -> %s", e.Name(), link)
		}
	}
}
