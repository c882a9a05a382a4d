package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// reportFD is the descriptor on which a starting shim tells Launch how the
// creation went: one JSON line, a report. holdFD is the file the shim
// holds open until its launch is over (see Launch).
const (
	reportFD = 3
	holdFD   = 4
)

// report is the starting shim's word to Launch.
type report struct {
	Pid int `json:"pid"`
	response
}

// monitorArg marks the second process of a launch, the monitor itself.
const monitorArg = "--monitor"

// Launch starts `exe shim --monitor <bundle>` detached (a new session,
// stdio on /dev/null; the caller's child only until the caller exits,
// reaped by a goroutine meanwhile) and returns once the shim has created
// the container: the runtime's create is done, the socket listens and the
// state is "created". On failure it returns the create error, classified
// (errors.Is works with oci.ErrExecNotFound and the errdefs classes), and
// nothing is left behind: no shim, no runtime state, no rootfs mount.
//
// hold, when given, is a file (the caller's lock) that the shim keeps open
// until its launch is over: reported, or, when the report cannot reach a
// caller that died meanwhile, torn down. A lock on it thus outlasts a
// caller killed during the launch for as long as the launch has effects.
func Launch(ctx context.Context, exe, bundle string, hold ...*os.File) error {
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return fmt.Errorf("launch shim: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("launch shim: %w", err)
	}
	defer r.Close()
	var held *os.File
	if len(hold) > 0 {
		held = hold[0]
	} else {
		if held, err = os.Open(os.DevNull); err != nil {
			w.Close()
			return fmt.Errorf("launch shim: %w", err)
		}
		defer held.Close()
	}
	// The monitor starts directly, in a session of its own: one Go
	// process start less than going through `berth shim`. It is our
	// child until we exit (a goroutine reaps it if it ends first), then
	// init's or a subreaper's.
	cmd := exec.Command(exe, "shim", monitorArg, bundle)
	cmd.Args[0] = "berth"
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{w, held}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("launch shim: %w", err)
	}
	go cmd.Wait()
	type result struct {
		data []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		data, err := io.ReadAll(io.LimitReader(r, 1<<16))
		got <- result{data, err}
	}()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		// Closing our end makes the shim's report fail, and a shim
		// that cannot report takes everything down again.
		r.Close()
		return ctx.Err()
	}
	var rep report
	if err := json.Unmarshal(bytes.TrimSpace(res.data), &rep); err != nil {
		return fmt.Errorf("shim for %s exited without reporting: %w", bundle, errdefs.ErrUnavailable)
	}
	if err := rep.err(); err != nil {
		if rep.Pid > 0 {
			waitGoneFor(rep.Pid, 10*time.Second)
		}
		return err
	}
	return nil
}

// waitGoneFor waits until pid is gone, at most d, by its pidfd (it may
// be our child, reaped by Launch's goroutine, or not).
func waitGoneFor(pid int, d time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != unix.EINTR {
			return
		}
	}
}

// Main is the `berth shim <bundle>` role. Its first process starts the
// monitor (`berth shim --monitor <bundle>`) and exits; the monitor
// creates the container, reports to Launch on fd 3 and watches the
// container until its final exit.
func Main(ctx context.Context, args []string) int {
	if len(args) == 2 && args[0] == monitorArg {
		return monitorMain(ctx, args[1])
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: berth shim <bundle>")
		return 2
	}
	rep := os.NewFile(reportFD, "report")
	unix.CloseOnExec(reportFD)
	cmd := exec.Command("/proc/self/exe", "shim", monitorArg, args[0])
	cmd.Args[0] = "berth"
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{rep}
	if hold := heldFile(); hold != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, hold)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		sendReport(rep, os.Getpid(), fmt.Errorf("start shim monitor: %w", err))
		return 1
	}
	return 0
}

// heldFile is the file Launch passed on holdFD to be held through the
// launch, made close-on-exec; nil when there is none.
func heldFile() *os.File {
	if _, err := unix.FcntlInt(holdFD, unix.F_GETFD, 0); err != nil {
		return nil
	}
	unix.CloseOnExec(holdFD)
	return os.NewFile(holdFD, "hold")
}

// sendReport writes the report for Launch.
func sendReport(f *os.File, pid int, err error) error {
	rep := report{Pid: pid}
	if err != nil {
		rep.response = errorResponse(err)
	}
	data, _ := json.Marshal(rep)
	_, werr := f.Write(append(data, '\n'))
	return werr
}

// tune keeps the monitor small: one P. The collector keeps Go's default
// pace: a memory limit below the runtime's own needs made it collect
// without end while the container started (114 cycles in one run, most
// of the monitor's CPU). freeStartup hands the start-up garbage back once
// the container runs.
func tune() {
	goruntime.GOMAXPROCS(1)
}

// freeStartup returns the memory the launch used to the kernel, once.
func freeStartup() {
	time.AfterFunc(2*time.Second, debug.FreeOSMemory)
}

func monitorMain(ctx context.Context, bundle string) int {
	tune()
	rep := os.NewFile(reportFD, "report")
	unix.CloseOnExec(reportFD)
	// hold is closed once the launch is over (or with the process).
	hold := heldFile()
	// The terminal's and the launcher's signals are not ours to die of;
	// handling them (rather than ignoring them) keeps the container's
	// processes from inheriting SIG_IGN.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, unix.SIGINT, unix.SIGHUP, unix.SIGPIPE, unix.SIGTERM)
	go func() {
		for range sigc {
		}
	}()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		sendReport(rep, os.Getpid(), fmt.Errorf("set child subreaper: %w", err))
		return 1
	}
	go reapOrphans()

	cfg, process, err := loadConfig(bundle)
	if err != nil {
		sendReport(rep, os.Getpid(), err)
		return 1
	}
	log := slog.New(slog.DiscardHandler)
	if f, err := os.OpenFile(filepath.Join(cfg.StateDir, "shim.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600); err == nil {
		log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s := &shim{cfg: cfg, process: process, log: log, done: make(chan struct{})}
	if s.rt, err = openRuntime(cfg, log); err != nil {
		sendReport(rep, os.Getpid(), err)
		return 1
	}
	prev, prevErr := ReadState(cfg.StateDir) // put back should the launch fail
	sv, err := s.launch(ctx)
	if err == nil {
		s.st.ShimPid = os.Getpid()
		if s.st.ShimStart, err = procStart(os.Getpid()); err == nil {
			err = WriteState(cfg.StateDir, s.st)
		}
	}
	if err == nil {
		// A launcher that is gone cannot learn of the container: take
		// it down again rather than leave it unknown.
		err = sendReport(rep, os.Getpid(), nil)
	}
	if err != nil {
		if sv != nil {
			sv.l.Close()
			os.Remove(cfg.SocketPath)
			if prevErr == nil {
				WriteState(cfg.StateDir, prev) // the exit code, error and times it had
			} else {
				os.Remove(filepath.Join(cfg.StateDir, stateFile))
			}
		}
		s.teardown(ctx)
		sendReport(rep, os.Getpid(), err)
		return 1
	}
	rep.Close()
	if hold != nil {
		hold.Close()
	}
	go sv.serve()
	freeStartup()
	log.Info("container created", "id", cfg.ID, "pid", s.st.Pid)
	s.monitor(ctx)

	// The final exit: answer the clients, then clean up.
	sv.close(5 * time.Second)
	os.Remove(cfg.SocketPath)
	s.teardown(ctx)
	due := s.exitCommandDue()
	if due {
		// The exit command (`berth rm`) must find the shim gone; anyone
		// else tells a dead shim by its pid and start time.
		s.mu.Lock()
		s.st.ShimPid, s.st.ShimStart = 0, 0
		s.saveLocked()
		s.mu.Unlock()
	}
	log.Info("container exited", "id", cfg.ID, "code", s.st.ExitCode)
	if due {
		s.runExitCommand()
	}
	return 0
}

// launch mounts the rootfs, creates the container and listens.
func (s *shim) launch(ctx context.Context) (*server, error) {
	if err := s.setup(); err != nil {
		return nil, err
	}
	if err := s.create(ctx); err != nil {
		return nil, err
	}
	l, err := listen(s.cfg.SocketPath)
	if err != nil {
		s.rt.Kill(ctx, s.cfg.ID, unix.SIGKILL, true)
		return nil, err
	}
	s.st.Status = StatusCreated
	return &server{s: s, l: l}, nil
}

// exitCommandDue says whether the exit command is to run: there is one,
// and the engine has neither removed the container already nor claimed
// its removal (run --rm's own command).
func (s *shim) exitCommandDue() bool {
	if len(s.cfg.ExitCommand) == 0 {
		return false
	}
	_, err := os.Stat(s.cfg.StateDir)
	return !errors.Is(err, fs.ErrNotExist) && !exitClaimed(s.cfg.Bundle)
}

// exitCommandTimeout bounds the exit command.
const exitCommandTimeout = 30 * time.Second

// runExitCommand runs the exit command and waits for it.
func (s *shim) runExitCommand() {
	ctx, cancel := context.WithTimeout(context.Background(), exitCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.cfg.ExitCommand[0], s.cfg.ExitCommand[1:]...)
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		s.log.Warn("exit command", "cmd", s.cfg.ExitCommand, "err", err, "output", string(out))
	}
}
