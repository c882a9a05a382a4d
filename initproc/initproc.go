// Package initproc is the tiny init berth puts at /sbin/docker-init when a
// container runs with --init, as Docker puts tini there: it starts the
// container's command as its only child, forwards the signals it receives
// to the child's process group, reaps every zombie that is reparented to
// it, and exits with the child's status (128+n when signal n killed it).
//
// The berth binary runs Main when it is called by the name docker-init,
// so the one static binary that is berth is also the init; it is
// bind-mounted read-only into the container and never written to.
package initproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit statuses of the init itself, tini's.
const (
	exitUsage    = 1
	exitNotFound = 127 // the command does not exist
	exitNoExec   = 126 // the command cannot be run
)

// options are the flags docker-init takes before "--". tini's other flags
// are accepted and ignored: berth always runs the child in its own process
// group and always becomes a subreaper when it is not PID 1.
type options struct {
	verbose bool
	argv    []string
}

// parseArgs reads "[-s] [-g] [-v] [--] command [args...]".
func parseArgs(args []string) (options, error) {
	var o options
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.argv = args[i+1:]
			i = len(args)
		case a == "-v" || a == "-vv" || a == "-vvv":
			o.verbose = true
		case a == "-s" || a == "-g" || a == "-w":
		case len(a) > 1 && a[0] == '-':
			return o, fmt.Errorf("unknown option %q", a)
		default:
			o.argv = args[i:]
			i = len(args)
		}
	}
	if len(o.argv) == 0 {
		return o, errors.New("no command given")
	}
	return o, nil
}

// Main is docker-init: args are what follows the program name. It returns
// the status to exit with.
func Main(args []string) int {
	return run(args, os.Stderr)
}

func run(args []string, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "[FATAL docker-init] %v\nusage: docker-init [-v] [--] PROGRAM [ARGS...]\n", err)
		return exitUsage
	}
	if os.Getpid() != 1 {
		// Orphans come to us, not to whatever is PID 1 of this namespace.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil && o.verbose {
			fmt.Fprintf(stderr, "[WARN docker-init] cannot become a subreaper: %v\n", err)
		}
	}
	// Catch every signal before the child exists, so that none sent in
	// between is lost or takes the default action on us.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, forwarded()...)
	children := make(chan os.Signal, 1)
	signal.Notify(children, unix.SIGCHLD)

	pid, err := spawn(o.argv)
	if err != nil {
		fmt.Fprintf(stderr, "[FATAL docker-init] exec %s failed: %v\n", o.argv[0], err)
		switch {
		case errors.Is(err, exec.ErrNotFound), errors.Is(err, unix.ENOENT):
			return exitNotFound
		default:
			return exitNoExec
		}
	}
	for {
		select {
		case s := <-sigs:
			// The group first: the child leads it. A child that left the
			// group (its own setsid) still gets the signal itself.
			n := s.(unix.Signal)
			if err := unix.Kill(-pid, n); err != nil {
				unix.Kill(pid, n)
			}
		case <-children:
			if status, done := reap(pid); done {
				return status
			}
		}
	}
}

// forwarded lists the signals init passes on: all but those it cannot
// catch, SIGCHLD (its own), the synchronous faults, the terminal stops
// (which would stop init itself) and SIGURG, which the Go runtime sends
// itself to preempt its threads.
func forwarded() []os.Signal {
	skip := map[unix.Signal]bool{
		unix.SIGKILL: true, unix.SIGSTOP: true, unix.SIGCHLD: true, unix.SIGURG: true,
		unix.SIGFPE: true, unix.SIGILL: true, unix.SIGSEGV: true, unix.SIGBUS: true,
		unix.SIGTRAP: true, unix.SIGSYS: true, unix.SIGTTIN: true, unix.SIGTTOU: true,
	}
	var out []os.Signal
	for n := unix.Signal(1); n <= 64; n++ {
		// 32 and 33 belong to the C library's threads.
		if skip[n] || n == 32 || n == 33 {
			continue
		}
		out = append(out, n)
	}
	return out
}

// spawn starts argv as the leader of a new process group, in the
// foreground of the terminal when stdin is one, with init's environment
// and stdio. The command is looked up in PATH as execvp does.
func spawn(argv []string) (int, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 0, err
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		sys.Foreground, sys.Ctty = true, 0
	}
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}, Sys: sys}
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil && sys.Foreground && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.ENOEXEC) {
		// A terminal that is not ours to hand over: run in the background.
		attr.Sys = &syscall.SysProcAttr{Setpgid: true}
		pid, err = syscall.ForkExec(path, argv, attr)
	}
	return pid, err
}

// reap collects every child that has exited. When the command (pid) is
// among them it returns its status as a shell reports it, and true.
func reap(pid int) (int, bool) {
	status, done := 0, false
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || p <= 0 {
			return status, done
		}
		if p == pid {
			status, done = exitStatus(ws), true
		}
	}
}

// exitStatus is the code of an exit, or 128+n for a death by signal n.
func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
