package runtime_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// skipIfSeccompMissing skips a test whose container failed only because
// the seccomp package cannot load the profile on this kernel.
func skipIfSeccompMissing(t *testing.T, res result) {
	t.Helper()
	if res.code != 0 && strings.Contains(res.stderr, "seccomp") && strings.Contains(strings.ToLower(res.stderr), "not implemented") {
		t.Skipf("seccomp not available: %s", res.stderr)
	}
}

func allowProfile(rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules}
}

func withSeccomp(sc *specs.LinuxSeccomp, nnp bool) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Seccomp = sc
		s.Process.NoNewPrivileges = nnp
	}
}

func TestIsolationSeccomp(t *testing.T) {
	errno := func(n uint) *uint { return &n }
	mkdirs := []string{"mkdir", "mkdirat"}
	chmodRule := func(names []string, index uint) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActErrno, ErrnoRet: errno(uint(unix.EPERM)),
			Args: []specs.LinuxSeccompArg{{Index: index, Value: 0o777, ValueTwo: 0o777, Op: specs.OpMaskedEqual}}}
	}
	chmodProfile := allowProfile(chmodRule([]string{"chmod"}, 1), chmodRule([]string{"fchmodat", "fchmodat2"}, 2))
	cases := []isoCase{
		{
			name: "errno default",
			edit: withSeccomp(allowProfile(specs.LinuxSyscall{Names: mkdirs, Action: specs.ActErrno}), true),
			args: sh(`mkdir /dev/shm/d || echo refused; touch /dev/shm/f && echo other syscalls ok`),
			want: []string{`Operation not permitted\nrefused\nother syscalls ok\n$`},
		},
		{
			name: "errnoRet ENOSYS",
			edit: withSeccomp(allowProfile(specs.LinuxSyscall{Names: mkdirs, Action: specs.ActErrno, ErrnoRet: errno(38)}), true),
			args: sh(`mkdir /dev/shm/d || echo refused`),
			want: []string{`Function not implemented\nrefused\n$`},
		},
		{
			name: "loaded without no_new_privs",
			edit: withSeccomp(allowProfile(specs.LinuxSyscall{Names: mkdirs, Action: specs.ActErrno, ErrnoRet: errno(38)}), false),
			args: sh(`grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /dev/shm/d || echo refused`),
			want: []string{`^NoNewPrivs:\s+0\nSeccomp:\s+2\n.*Function not implemented\nrefused\n$`},
		},
		{
			name: "no profile",
			args: sh(`grep -E '^Seccomp:' /proc/self/status; mkdir /dev/shm/d && echo made`),
			want: []string{`^Seccomp:\s+0\nmade\n$`},
		},
		{
			name: "argument condition",
			edit: withSeccomp(chmodProfile, true),
			args: sh(`touch /dev/shm/f; chmod 0644 /dev/shm/f && echo 644 ok; chmod 0777 /dev/shm/f || echo 777 refused; chmod 1777 /dev/shm/f || echo 1777 refused; stat -c %a /dev/shm/f`),
			want: []string{`^644 ok\n.*Operation not permitted\n777 refused\n.*Operation not permitted\n1777 refused\n644\n$`},
		},
		{
			name: "default action errno",
			edit: withSeccomp(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errno(uint(unix.EACCES)),
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: errno(uint(unix.EXDEV))}, {Names: allowedForSh, Action: specs.ActAllow}}}, true),
			args: sh(`mkdir /dev/shm/d || echo refused`),
			want: []string{`Invalid cross-device link\nrefused\n$`},
		},
		{
			name: "kill process",
			edit: withSeccomp(allowProfile(specs.LinuxSyscall{Names: mkdirs, Action: specs.ActKillProcess}), true),
			args: []string{"mkdir", "/dev/shm/d"},
			code: 128 + int(unix.SIGSYS),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runIso(t, tc)
			skipIfSeccompMissing(t, res)
			checkIso(t, tc, res)
		})
	}
}

// allowedForSh is what busybox sh -c "mkdir ..." needs under a profile
// whose default refuses.
var allowedForSh = []string{
	"execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64", "mprotect",
	"readlinkat", "readlink", "getrandom", "mmap", "munmap", "uname", "getuid", "geteuid", "getgid", "getegid",
	"getpid", "getppid", "getpgrp", "getcwd", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "fcntl", "dup2", "dup3",
	"write", "writev", "read", "close", "exit", "exit_group", "wait4", "clone", "clone3", "fork", "vfork", "openat", "open",
	"newfstatat", "fstat", "stat", "lstat", "statx", "ioctl", "access", "faccessat", "faccessat2", "futex", "sigaltstack",
	"poll", "ppoll", "select", "pselect6", "lseek", "getdents64", "umask", "capget", "sched_getaffinity",
	"nanosleep", "clock_nanosleep", "clock_gettime", "sched_yield", "tgkill", "gettid", "madvise", "close_range",
	"epoll_pwait", "epoll_ctl", "epoll_create1", "pipe2", "sendmsg", "recvmsg", "sendto", "recvfrom", "fchdir", "chdir",
}

// seccompNotif and seccompNotifResp are the kernel's struct seccomp_notif
// and struct seccomp_notif_resp (golang.org/x/sys has only the ioctls).
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// notifyAgent listens at path for the runtime's seccomp listener fd and
// answers every notification with answer. It returns the state the
// runtime sent, once the container has run.
func notifyAgent(t *testing.T, path string, answer func(n *seccompNotif) seccompNotifResp) <-chan specs.ContainerProcessState {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	states := make(chan specs.ContainerProcessState, 1)
	go func() {
		defer close(states)
		l.SetDeadline(time.Now().Add(time.Minute))
		c, err := l.AcceptUnix()
		if err != nil {
			t.Errorf("seccomp agent: accept: %v", err)
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Errorf("seccomp agent: read: %v", err)
			return
		}
		var st specs.ContainerProcessState
		if err := json.Unmarshal(buf[:n], &st); err != nil {
			t.Errorf("seccomp agent: state %q: %v", buf[:n], err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Errorf("seccomp agent: control messages %v: %v", msgs, err)
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Errorf("seccomp agent: fds %v: %v", fds, err)
			return
		}
		fd := fds[0]
		defer unix.Close(fd)
		for {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(pfd, 30000); err != nil && err != unix.EINTR {
				break
			}
			if pfd[0].Revents&unix.POLLHUP != 0 || pfd[0].Revents == 0 {
				break // no process uses the filter any more, or timed out
			}
			var req seccompNotif
			if err := ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&req)); err != nil {
				if err == unix.EINTR || err == unix.ENOENT {
					continue
				}
				t.Errorf("seccomp agent: NOTIF_RECV: %v", err)
				break
			}
			resp := answer(&req)
			resp.ID = req.ID
			if err := ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp)); err != nil && err != unix.ENOENT {
				t.Errorf("seccomp agent: NOTIF_SEND: %v", err)
			}
		}
		states <- st
	}()
	return states
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

func TestIsolationSeccompNotify(t *testing.T) {
	if unsafe.Sizeof(seccompNotif{}) != 80 || unsafe.Sizeof(seccompNotifResp{}) != 24 {
		t.Fatal("seccomp notification structs have the wrong size")
	}
	for _, tc := range []struct {
		name   string
		answer func(*seccompNotif) seccompNotifResp
		want   string
	}{
		{
			name:   "fake success",
			answer: func(*seccompNotif) seccompNotifResp { return seccompNotifResp{} },
			want:   "^rc=0\nabsent\n$",
		},
		{
			name:   "errno 55",
			answer: func(*seccompNotif) seccompNotifResp { return seccompNotifResp{Error: -int32(unix.ENOBUFS)} },
			want:   "No buffer space available\nrc=1\nabsent\n$",
		},
		{
			name: "continue",
			answer: func(*seccompNotif) seccompNotifResp {
				return seccompNotifResp{Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
			},
			want: "^rc=0\nexists\n$",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "agent.sock")
			var seen []int32
			states := notifyAgent(t, sock, func(n *seccompNotif) seccompNotifResp {
				seen = append(seen, n.Nr)
				return tc.answer(n)
			})
			prof := allowProfile(specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify})
			prof.ListenerPath = sock
			prof.ListenerMetadata = "berth-test-metadata"
			c := isoCase{
				edit: withSeccomp(prof, true),
				args: sh(`mkdir /dev/shm/d; echo rc=$?; test -d /dev/shm/d && echo exists || echo absent`),
				want: []string{tc.want},
			}
			res := runIso(t, c)
			skipIfSeccompMissing(t, res)
			checkIso(t, c, res)
			st, ok := <-states
			if !ok {
				t.Fatal("the seccomp agent got nothing")
			}
			if st.Version == "" || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName || st.Pid <= 0 ||
				st.Metadata != "berth-test-metadata" || st.State.ID == "" || st.State.Pid != st.Pid {
				t.Errorf("container process state = %+v", st)
			}
			if len(seen) != 1 || (seen[0] != unix.SYS_MKDIR && seen[0] != unix.SYS_MKDIRAT) {
				t.Errorf("notifications for syscalls %v, want one mkdir", seen)
			}
		})
	}
	t.Run("no listener", func(t *testing.T) {
		prof := allowProfile(specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify})
		prof.ListenerPath = filepath.Join(t.TempDir(), "nobody.sock")
		res := runIso(t, isoCase{edit: withSeccomp(prof, true), args: []string{"true"}})
		skipIfSeccompMissing(t, res)
		if res.code == 0 {
			t.Errorf("a container whose seccomp agent is absent ran")
		}
		if _, err := os.Stat(prof.ListenerPath); err == nil {
			t.Errorf("listener socket appeared")
		}
	})
}
