package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// Launch starts a monitor (Prestart) and has it create the container of
// bundle (Monitor.Launch), holding hold[0] if given through the launch.
func Launch(ctx context.Context, exe, bundle string, hold ...*os.File) error {
	m, err := Prestart(exe, bundle)
	if err != nil {
		return err
	}
	var h *os.File
	if len(hold) > 0 {
		h = hold[0]
	}
	return m.Launch(ctx, h)
}

// Main is the `berth shim <bundle>` role. Its first process starts the
// monitor (`berth shim --monitor <bundle>`) and exits; the monitor
// creates the container, reports to Launch on fd 3 and watches the
// container until its final exit. Launch starts the monitor directly
// (`--monitor --prestarted <bundle>`, see Prestart); `--hold-terminal`
// holds a detached exec's terminal (HoldTerminal).
func Main(ctx context.Context, args []string) int {
	if len(args) == 1 && args[0] == holdTerminalArg {
		return holdTerminalMain()
	}
	if len(args) == 2 && args[0] == monitorArg {
		return monitorMain(ctx, args[1], false)
	}
	if len(args) == 3 && args[0] == monitorArg && args[1] == prestartArg {
		return monitorMain(ctx, args[2], true)
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

func monitorMain(ctx context.Context, bundle string, prestarted bool) int {
	tune()
	rep := os.NewFile(reportFD, "report")
	unix.CloseOnExec(reportFD)
	// hold is closed once the launch is over (or with the process).
	var hold *os.File
	if !prestarted {
		hold = heldFile()
	}
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

	if prestarted {
		// Started ahead (Prestart): go once the bundle is written.
		var err error
		if hold, err = awaitLaunch(); err != nil {
			return 0 // not needed after all, or the launcher is gone
		}
	}
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
