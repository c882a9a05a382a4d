package seccomp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The load tests install filters for real. A filter can never be removed,
// so each test runs the test binary again as a child (TestHelper), which
// loads the profile on a locked thread and makes the system calls the
// parent asks for on it, then reports what they returned.

const helperEnv = "BERTH_SECCOMP_HELPER"

// atFDCWD is AT_FDCWD as the kernel reads an int argument.
const atFDCWD = uint64(uint32(0xffffff9c))

// A probe is one system call for the child to make.
type probe struct {
	Name  string
	Nr    uint64
	Args  [6]uint64
	Ptrs  map[int]string // argument index: "buf:N" for a buffer, otherwise a path
	Other bool           // make it on a second thread, not the filtered one
}

type helperInput struct {
	Profile specs.LinuxSeccomp
	Probes  []probe
	Wait    time.Duration // for the probes; past it the thread counts as killed
}

type result struct {
	Name  string
	Ret   uint64
	Errno syscall.Errno
}

type helperOutput struct {
	LoadErr  string
	Listener bool
	Killed   bool // the filtered thread never finished
	Results  []result
}

func (o helperOutput) get(t *testing.T, name string) result {
	t.Helper()
	for _, r := range o.Results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no result for %s in %+v", name, o)
	return result{}
}

// TestHelper is the child side; it does nothing in a normal test run.
func TestHelper(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("the child process of the load tests")
	}
	var in helperInput
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	other, otherDone := make(chan probe), make(chan result)
	go func() {
		runtime.LockOSThread()
		for p := range other {
			otherDone <- makeCall(p)
		}
	}()
	done := make(chan helperOutput, 1)
	go func() {
		// Locked for good: the filtered thread ends with this goroutine.
		runtime.LockOSThread()
		var out helperOutput
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			out.LoadErr = err.Error()
			done <- out
			return
		}
		fd, err := Load(&in.Profile)
		if err != nil {
			out.LoadErr = err.Error()
			done <- out
			return
		}
		if fd >= 0 {
			out.Listener = true
			if err := unix.Sendmsg(3, []byte{0}, unix.UnixRights(fd), nil, 0); err != nil {
				out.LoadErr = "sending listener: " + err.Error()
				done <- out
				return
			}
		}
		for _, p := range in.Probes {
			if p.Other {
				other <- p
				out.Results = append(out.Results, <-otherDone)
			} else {
				out.Results = append(out.Results, makeCall(p))
			}
		}
		done <- out
	}()
	var out helperOutput
	select {
	case out = <-done:
	case <-time.After(in.Wait):
		out.Killed = true
	}
	b, _ := json.Marshal(out)
	fmt.Printf("\nRESULT %s\n", b)
	os.Exit(0)
}

func makeCall(p probe) result {
	args := p.Args
	var keep [][]byte
	for i, s := range p.Ptrs {
		var b []byte
		if n, ok := strings.CutPrefix(s, "buf:"); ok {
			size, _ := strconv.Atoi(n)
			b = make([]byte, size)
		} else {
			b = append([]byte(s), 0)
		}
		keep = append(keep, b)
		args[i] = uint64(uintptr(unsafe.Pointer(&b[0])))
	}
	r, _, errno := unix.Syscall6(uintptr(p.Nr), uintptr(args[0]), uintptr(args[1]), uintptr(args[2]),
		uintptr(args[3]), uintptr(args[4]), uintptr(args[5]))
	runtime.KeepAlive(keep)
	return result{Name: p.Name, Ret: uint64(r), Errno: errno}
}

// child runs TestHelper with in. If the profile yields a listener,
// onListener gets it while the child runs.
type child struct {
	out    helperOutput
	state  *os.ProcessState
	stderr string
}

func runChild(t *testing.T, in helperInput, onListener func(fd int)) child {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the probes use x86_64 system call numbers")
	}
	if in.Wait == 0 {
		in.Wait = 20 * time.Second
	}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
	defer mine.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	cmd.ExtraFiles = []*os.File{theirs}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	listened := make(chan struct{})
	go func() {
		defer close(listened)
		buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := unix.Recvmsg(int(mine.Fd()), buf, oob, 0)
		if err != nil || oobn == 0 {
			return // the child exited without a listener
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Errorf("control message: %v", err)
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Errorf("listener fd: %v", err)
			return
		}
		defer unix.Close(fds[0])
		if onListener != nil {
			onListener(fds[0])
		}
	}()
	werr := cmd.Wait()
	<-listened
	c := child{state: cmd.ProcessState, stderr: stderr.String()}
	var exitErr *exec.ExitError
	if werr != nil && !errors.As(werr, &exitErr) {
		t.Fatalf("child: %v", werr)
	}
	if _, res, ok := strings.Cut(stdout.String(), "\nRESULT "); ok {
		if err := json.Unmarshal([]byte(strings.TrimSpace(res)), &c.out); err != nil {
			t.Fatalf("child output %q: %v", res, err)
		}
	}
	return c
}

// mustRun runs a child that must load the profile and exit normally.
func mustRun(t *testing.T, in helperInput, onListener func(fd int)) helperOutput {
	t.Helper()
	c := runChild(t, in, onListener)
	if !c.state.Success() || c.out.LoadErr != "" {
		t.Fatalf("child: %v, load error %q, stderr:\n%s", c.state, c.out.LoadErr, c.stderr)
	}
	return c.out
}

func expect(t *testing.T, out helperOutput, name string, errno syscall.Errno) result {
	t.Helper()
	r := out.get(t, name)
	if r.Errno != errno {
		t.Errorf("%s: errno %d (%v), want %d (%v)", name, r.Errno, r.Errno, errno, errno)
	}
	return r
}

// goRuntime is what the Go runtime needs on the filtered thread under a
// deny-by-default profile. Every number is below 303 (prlimit64).
var goRuntime = []string{
	"read", "write", "close", "mmap", "munmap", "madvise", "mprotect", "brk",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"nanosleep", "clock_gettime", "clock_nanosleep", "gettid", "getpid",
	"tgkill", "tkill", "futex", "sched_yield", "sched_getaffinity", "clone",
	"exit", "exit_group", "epoll_create1", "epoll_ctl", "epoll_pwait",
	"epoll_wait", "pipe2", "eventfd2", "fcntl", "openat", "fstat",
	"newfstatat", "getrlimit", "prlimit64", "set_robust_list", "sendmsg",
	"recvmsg", "getcwd",
}

func TestLoadActions(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/f"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	errno := func(n syscall.Errno) *uint { v := uint(n); return &v }
	p := specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		nameRule(specs.ActErrno, "mkdirat"),
		{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EXDEV)},
		nameRule(specs.ActTrace, "uname"),
		nameRule(specs.ActLog, "getppid"),
		{Names: []string{"chmod"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EACCES),
			Args: []specs.LinuxSeccompArg{arg(1, specs.OpEqualTo, 0o777)}},
		{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EFBIG),
			Args: []specs.LinuxSeccompArg{arg(1, specs.OpGreaterThan, 0xffffffff)}},
	}}
	out := mustRun(t, helperInput{Profile: p, Probes: []probe{
		{Name: "mkdirat", Nr: unix.SYS_MKDIRAT, Args: [6]uint64{atFDCWD, 0, 0o755}, Ptrs: map[int]string{1: dir + "/d"}},
		{Name: "getcwd", Nr: unix.SYS_GETCWD, Args: [6]uint64{0, 4096}, Ptrs: map[int]string{0: "buf:4096"}},
		{Name: "uname", Nr: unix.SYS_UNAME, Ptrs: map[int]string{0: "buf:512"}},
		{Name: "getppid", Nr: unix.SYS_GETPPID},
		{Name: "chmod 777", Nr: unix.SYS_CHMOD, Args: [6]uint64{0, 0o777}, Ptrs: map[int]string{0: file}},
		{Name: "chmod 644", Nr: unix.SYS_CHMOD, Args: [6]uint64{0, 0o644}, Ptrs: map[int]string{0: file}},
		{Name: "lseek 4G", Nr: unix.SYS_LSEEK, Args: [6]uint64{0xffffffff, 1 << 32}},
		{Name: "lseek 5", Nr: unix.SYS_LSEEK, Args: [6]uint64{0xffffffff, 5}},
		{Name: "getpid", Nr: unix.SYS_GETPID},
	}}, nil)
	expect(t, out, "mkdirat", unix.EPERM)
	expect(t, out, "getcwd", unix.EXDEV)
	expect(t, out, "uname", unix.ENOSYS) // SCMP_ACT_TRACE with no tracer
	if r := expect(t, out, "getppid", 0); r.Ret != uint64(os.Getpid()) {
		t.Errorf("getppid = %d under SCMP_ACT_LOG, want %d", r.Ret, os.Getpid())
	}
	expect(t, out, "chmod 777", unix.EACCES)
	expect(t, out, "chmod 644", 0)
	expect(t, out, "lseek 4G", unix.EFBIG) // a 64-bit argument
	expect(t, out, "lseek 5", unix.EBADF)
	expect(t, out, "getpid", 0)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("chmod 644 did not happen: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(dir + "/d"); !os.IsNotExist(err) {
		t.Errorf("mkdirat happened: %v", err)
	}
}

func TestLoadDenyByDefault(t *testing.T) {
	p := specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{nameRule(specs.ActAllow, goRuntime...)}}
	out := mustRun(t, helperInput{Profile: p, Probes: []probe{
		{Name: "getcwd", Nr: unix.SYS_GETCWD, Args: [6]uint64{0, 4096}, Ptrs: map[int]string{0: "buf:4096"}},
		{Name: "uname", Nr: unix.SYS_UNAME, Ptrs: map[int]string{0: "buf:512"}},
		{Name: "mkdirat", Nr: unix.SYS_MKDIRAT, Args: [6]uint64{0, 0, 0o755}, Ptrs: map[int]string{1: "/nonexistent/x"}},
		{Name: "memfd_create", Nr: unix.SYS_MEMFD_CREATE, Ptrs: map[int]string{0: "x"}},
		{Name: "openat2", Nr: unix.SYS_OPENAT2},
		{Name: "nr 1000", Nr: 1000},
	}}, nil)
	expect(t, out, "getcwd", 0)
	expect(t, out, "uname", unix.EPERM)         // 63: older than the newest named call
	expect(t, out, "mkdirat", unix.EPERM)       // 258
	expect(t, out, "memfd_create", unix.ENOSYS) // 319: newer than prlimit64 (302)
	expect(t, out, "openat2", unix.ENOSYS)
	expect(t, out, "nr 1000", unix.ENOSYS)
}

func TestLoadKills(t *testing.T) {
	getppid := []probe{{Name: "getppid", Nr: unix.SYS_GETPPID}}
	t.Run("SCMP_ACT_KILL_PROCESS", func(t *testing.T) {
		c := runChild(t, helperInput{Probes: getppid, Profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{nameRule(specs.ActKillProcess, "getppid")}}}, nil)
		ws := c.state.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
			t.Fatalf("child: %v, want killed by SIGSYS; stderr:\n%s", c.state, c.stderr)
		}
	})
	t.Run("SCMP_ACT_TRAP", func(t *testing.T) {
		c := runChild(t, helperInput{Probes: getppid, Profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{nameRule(specs.ActTrap, "getppid")}}}, nil)
		// The Go runtime turns the SIGSYS into a crash.
		if c.state.ExitCode() != 2 || !strings.Contains(c.stderr, "SIGSYS") {
			t.Fatalf("child: %v, want a SIGSYS crash; stderr:\n%s", c.state, c.stderr)
		}
	})
	t.Run("SCMP_ACT_KILL", func(t *testing.T) {
		c := runChild(t, helperInput{Probes: getppid, Wait: 2 * time.Second, Profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{nameRule(specs.ActKill, "getppid")}}}, nil)
		// Only the thread dies; the process goes on.
		if !c.state.Success() || !c.out.Killed {
			t.Fatalf("child: %v %+v, want the filtered thread killed; stderr:\n%s", c.state, c.out, c.stderr)
		}
	})
}

func TestLoadBadArch(t *testing.T) {
	x32getpid := []probe{{Name: "x32 getpid", Nr: x32Bit | unix.SYS_GETPID}}
	// x32 is not listed: the x32 call meets the bad-arch action.
	c := runChild(t, helperInput{Probes: x32getpid, Wait: 2 * time.Second,
		Profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64}}}, nil)
	if !c.state.Success() || !c.out.Killed {
		t.Fatalf("child: %v %+v, want the thread killed; stderr:\n%s", c.state, c.out, c.stderr)
	}
	// Listed, it is allowed (ENOSYS if the kernel lacks x32 support).
	out := mustRun(t, helperInput{Probes: x32getpid,
		Profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX32}}}, nil)
	if r := out.get(t, "x32 getpid"); r.Errno != 0 && r.Errno != unix.ENOSYS {
		t.Errorf("x32 getpid: %v", r.Errno)
	}
}

// Kernel structures of the notification API, which x/sys/unix lacks.
type notif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  struct {
		Nr   int32
		Arch uint32
		IP   uint64
		Args [6]uint64
	}
}

type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// answer receives one notification on fd and answers it.
func answer(t *testing.T, fd int, respond func(n *notif) notifResp) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 10000); n != 1 || err != nil {
		t.Errorf("no notification: %d %v", n, err)
		return
	}
	var n notif
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Errorf("SECCOMP_IOCTL_NOTIF_RECV: %v", errno)
		return
	}
	resp := respond(&n)
	resp.ID = n.ID
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); errno != 0 {
		t.Errorf("SECCOMP_IOCTL_NOTIF_SEND: %v", errno)
	}
}

func TestLoadNotify(t *testing.T) {
	p := specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{
			nameRule(specs.ActNotify, "getppid"),
			{Names: []string{"mkdirat"}, Action: specs.ActNotify, Args: []specs.LinuxSeccompArg{arg(2, specs.OpEqualTo, 0o700)}},
		}}
	var seen []int32
	out := mustRun(t, helperInput{Profile: p, Probes: []probe{
		{Name: "getppid", Nr: unix.SYS_GETPPID},
		{Name: "mkdirat", Nr: unix.SYS_MKDIRAT, Args: [6]uint64{0, 0, 0o700}, Ptrs: map[int]string{1: "/nonexistent/x"}},
		{Name: "getpid", Nr: unix.SYS_GETPID},
	}}, func(fd int) {
		for range 2 {
			answer(t, fd, func(n *notif) notifResp {
				seen = append(seen, n.Data.Nr)
				if n.Data.Arch != unix.AUDIT_ARCH_X86_64 {
					t.Errorf("notification arch %#x", n.Data.Arch)
				}
				if n.Data.Nr == unix.SYS_GETPPID {
					return notifResp{Val: 4242}
				}
				return notifResp{Error: -int32(unix.EXDEV)}
			})
		}
	})
	if !out.Listener {
		t.Error("no listener")
	}
	if len(seen) != 2 || seen[0] != unix.SYS_GETPPID || seen[1] != unix.SYS_MKDIRAT {
		t.Errorf("notified of %v", seen)
	}
	if r := expect(t, out, "getppid", 0); r.Ret != 4242 {
		t.Errorf("getppid = %d, want the agent's 4242", r.Ret)
	}
	expect(t, out, "mkdirat", unix.EXDEV)
	expect(t, out, "getpid", 0)
}

func TestLoadFlags(t *testing.T) {
	dir := t.TempDir()
	mkdir := func(name string, other bool) probe {
		return probe{Name: name, Nr: unix.SYS_MKDIRAT, Other: other,
			Args: [6]uint64{atFDCWD, 0, 0o755}, Ptrs: map[int]string{1: dir + "/" + name}}
	}
	deny := []specs.LinuxSyscall{nameRule(specs.ActErrno, "mkdirat")}

	// Without TSYNC the filter holds only on the thread that loaded it.
	out := mustRun(t, helperInput{Profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: deny},
		Probes: []probe{mkdir("a", false), mkdir("b", true)}}, nil)
	expect(t, out, "a", unix.EPERM)
	expect(t, out, "b", 0)

	// With it, on every thread.
	out = mustRun(t, helperInput{Profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: deny,
		Flags: []specs.LinuxSeccompFlag{flagTSync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}},
		Probes: []probe{mkdir("c", false), mkdir("d", true)}}, nil)
	expect(t, out, "c", unix.EPERM)
	expect(t, out, "d", unix.EPERM)

	// TSYNC with a listener takes TSYNC_ESRCH; WAIT_KILLABLE_RECV without
	// one is dropped.
	notify := append(deny, nameRule(specs.ActNotify, "getppid"))
	out = mustRun(t, helperInput{Profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: notify,
		Flags: []specs.LinuxSeccompFlag{flagTSync, specs.LinuxSeccompFlagWaitKillableRecv}},
		Probes: []probe{mkdir("e", true)}}, nil)
	if !out.Listener {
		t.Error("TSYNC and NOTIFY: no listener")
	}
	expect(t, out, "e", unix.EPERM)
	mustRun(t, helperInput{Profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: deny,
		Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}}}, nil)
}

func TestLoadDockerDefault(t *testing.T) {
	const sockStream = unix.SOCK_STREAM
	out := mustRun(t, helperInput{Profile: *dockerProfile(t), Probes: []probe{
		{Name: "getcwd", Nr: unix.SYS_GETCWD, Args: [6]uint64{0, 4096}, Ptrs: map[int]string{0: "buf:4096"}},
		{Name: "uname", Nr: unix.SYS_UNAME, Ptrs: map[int]string{0: "buf:512"}},
		{Name: "socket unix", Nr: unix.SYS_SOCKET, Args: [6]uint64{unix.AF_UNIX, sockStream}},
		{Name: "personality query", Nr: unix.SYS_PERSONALITY, Args: [6]uint64{0xffffffff}},
		{Name: "unshare", Nr: unix.SYS_UNSHARE, Args: [6]uint64{unix.CLONE_NEWNS}},
		{Name: "mount", Nr: unix.SYS_MOUNT, Ptrs: map[int]string{0: "none", 1: "/nonexistent/berth", 2: "tmpfs"}},
		{Name: "setns", Nr: unix.SYS_SETNS, Args: [6]uint64{0xffffffff}},
		{Name: "bpf", Nr: unix.SYS_BPF, Args: [6]uint64{0xffff}},
		{Name: "reboot", Nr: unix.SYS_REBOOT},
		{Name: "socket vsock", Nr: unix.SYS_SOCKET, Args: [6]uint64{unix.AF_VSOCK, sockStream}},
		{Name: "personality set", Nr: unix.SYS_PERSONALITY, Args: [6]uint64{0x0040000}}, // ADDR_NO_RANDOMIZE,
		// CLONE_FS with CLONE_NEWUSER is EINVAL should the filter let it by.
		{Name: "clone newuser", Nr: unix.SYS_CLONE, Args: [6]uint64{unix.CLONE_NEWUSER | unix.CLONE_FS}},
		{Name: "clone3", Nr: unix.SYS_CLONE3},
		{Name: "nr 1000", Nr: 1000},
	}}, nil)
	for _, name := range []string{"getcwd", "uname", "socket unix", "personality query"} {
		expect(t, out, name, 0)
	}
	for _, name := range []string{"unshare", "mount", "setns", "bpf", "reboot", "socket vsock", "personality set", "clone newuser"} {
		expect(t, out, name, unix.EPERM)
	}
	expect(t, out, "clone3", unix.ENOSYS) // the profile's errnoRet 38
	expect(t, out, "nr 1000", unix.ENOSYS)
}
