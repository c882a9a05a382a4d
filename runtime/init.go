package runtime

import (
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"

	"github.com/berth-dev/berth/runtime/nsexec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Init is the container side of the runtime: `berth init`, started by the
// parent after the nsexec constructor has placed this process in its
// namespaces. It never returns: it execs the container's process or exits
// 1 after reporting why on the init socket.
//
// The order of the steps follows runc's standard_init_linux.go, for the
// same reasons:
//
//  1. unshare the cgroup namespace once we are in our cgroup, so the
//     container sees its cgroup as the root;
//  2. mounts, devices and /dev links inside the rootfs (rootfs.go). On
//     cgroup v1, where the kernel is slow to move a process between
//     cgroups, the parent moves us meanwhile and step 1 follows this one;
//  3. ask the parent to run prestart/createRuntime hooks, then run the
//     createContainer hooks ourselves, still able to see the host;
//  4. pivot_root (or MS_MOVE + chroot with --no-pivot);
//  5. the console: a pty from the container's devpts, its master sent to
//     the console socket, its slave made our stdio and /dev/console;
//  6. hostname, domainname, sysctls, personality (before the next
//     step makes /proc/sys read-only);
//  7. read-only rootfs, masked and read-only paths; raise the hard
//     rlimits the process needs, so a limit it cannot have fails create;
//  8. no_new_privs; the cwd, entered and checked to lie inside the
//     container (CVE-2024-21626) before any filter could deny getcwd;
//     then seccomp before the capability drop when
//     no_new_privs is off (loading it needs CAP_SYS_ADMIN), else as late
//     as possible, after the user change, so that fewer of our own
//     syscalls run under the container's filter;
//  9. bounding set, keep-caps, setgroups/setgid/setuid, the other four
//     capability sets, umask, the cwd again as the user;
//  10. look up the program, report ready and close the socket;
//  11. block opening exec.fifo for writing until `start`, run the
//     startContainer hooks;
//  12. set the rlimits (only now: a low RLIMIT_NPROC or RLIMIT_AS would
//     starve init's own Go runtime), mark every fd above the preserved
//     ones close-on-exec, so nothing of the runtime leaks in
//     (CVE-2024-21626), and execve.
func Init() {
	goruntime.GOMAXPROCS(1)
	goruntime.LockOSThread()
	fd, err := strconv.Atoi(os.Getenv(nsexec.EnvInit))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: not started by the runtime")
		os.Exit(1)
	}
	c := conn{fd}
	var cfg initConfig
	if _, err := c.recv(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "berth init: read config:", err)
		os.Exit(1)
	}
	err = containerInit(c, &cfg)
	c.send(message{Type: "error", Msg: err.Error()})
	os.Exit(1)
}

// ask sends a request to the parent and waits for its answer.
func ask(c conn, m message, fds ...int) error {
	if err := c.send(m, fds...); err != nil {
		return err
	}
	var ans message
	if _, err := c.recv(&ans); err != nil {
		return err
	}
	if ans.Type == "error" {
		return errAnswered{ans.Msg}
	}
	return nil
}

// errAnswered is an error the parent already knows about.
type errAnswered struct{ msg string }

func (e errAnswered) Error() string { return e.msg }

func containerInit(c conn, cfg *initConfig) error {
	s, p := cfg.Spec, cfg.Process
	create := cfg.Mode == "create"
	if cfg.Placement == "early" {
		if err := ask(c, message{Type: "cgroup"}); err != nil {
			return err
		}
	}
	if create {
		if cfg.Placement != "late" {
			if err := unshareCgroupns(cfg); err != nil {
				return err
			}
		}
		if err := prepareRootfs(cfg); err != nil {
			return err
		}
		if cfg.Placement == "late" {
			if err := ask(c, message{Type: "cgroup"}); err != nil {
				return err
			}
			if err := unshareCgroupns(cfg); err != nil {
				return err
			}
		}
		if h := s.Hooks; h != nil && (len(h.Prestart) > 0 || len(h.CreateRuntime) > 0) {
			if err := ask(c, message{Type: "hooks"}); err != nil {
				return err
			}
		}
		if h := s.Hooks; h != nil {
			if err := runHooks(context.Background(), "createContainer", h.CreateContainer, cfg.State); err != nil {
				return err
			}
		}
		if err := switchRoot(cfg.Rootfs, cfg.NoPivot, hasNS(s, specs.MountNamespace)); err != nil {
			return err
		}
	}
	if p.Terminal {
		if err := setupConsole(cfg.ConsoleFD, create, p.ConsoleSize); err != nil {
			return err
		}
	} else if cfg.ConsoleFD > 0 {
		unix.Close(cfg.ConsoleFD)
	}
	if create {
		if err := setupKernel(s); err != nil {
			return err
		}
		if err := finalizeRootfs(s); err != nil {
			return err
		}
	}
	if err := setupProcess(c, cfg); err != nil {
		return err
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return err
	}
	if err := c.send(message{Type: "ready"}); err != nil {
		return err
	}
	// An exec's socket stays open until execve closes it: the parent
	// returns once the program runs.
	if create {
		c.close()
		waitStart(cfg.FifoFD)
		if h := s.Hooks; h != nil {
			state := cfg.State
			state.Status = "created" // as runc: start has been called, the program not yet run
			if err := runHooks(context.Background(), "startContainer", h.StartContainer, state); err != nil {
				fmt.Fprintln(os.Stderr, "berth init:", err)
				os.Exit(1)
			}
		}
	}
	if err := setRlimits(p.Rlimits); err != nil {
		fmt.Fprintln(os.Stderr, "berth init:", err)
		os.Exit(1)
	}
	closeExecFrom(3 + cfg.PreserveFDs)
	err = unix.Exec(path, p.Args, p.Env)
	// The parent is gone by now: the error goes to the container's stderr.
	fmt.Fprintf(os.Stderr, "berth init: exec %s: %v\n", p.Args[0], err)
	os.Exit(127)
	return nil
}

// unshareCgroupns gives the container its cgroup namespace, once init
// is in its cgroup, which becomes the namespace's root.
func unshareCgroupns(cfg *initConfig) error {
	if !cfg.Cgroupns {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("unshare cgroup namespace: %w", err)
	}
	return nil
}

// waitStart blocks until `start` opens the exec fifo, then tells it so.
// The parent is gone: a failure exits with the reason on stderr.
func waitStart(fifoFD int) {
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fifoFD), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: open exec fifo:", err)
		os.Exit(1)
	}
	if _, err := unix.Write(fd, []byte{'0'}); err != nil {
		fmt.Fprintln(os.Stderr, "berth init: write exec fifo:", err)
		os.Exit(1)
	}
	// fd stays open (close-on-exec) until execve: start waits for it
	// to close, so that poststart hooks run after the startContainer
	// hooks and once the user's process runs.
	unix.Close(fifoFD)
}

// closeExecFrom marks every fd from lowest up close-on-exec: the kernel's
// close_range when it has CLOSE_RANGE_CLOEXEC, /proc/self/fd otherwise.
// No Go file I/O may happen after this; execve follows at once.
func closeExecFrom(lowest int) {
	if err := unix.CloseRange(uint(lowest), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= lowest {
			unix.CloseOnExec(fd)
		}
	}
}
