package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// prestartArg marks a monitor started ahead of its bundle: it waits on
// controlFD for the word to go.
const prestartArg = "--prestarted"

// controlFD is, in a monitor started ahead, the socket on which Launch
// says go, with the file to hold (as SCM_RIGHTS). It takes holdFD's
// place, the hold coming on it.
const controlFD = holdFD

// Monitor is a monitor process started before its container's bundle is
// written (Prestart), so that its process start, a Go runtime's, overlaps
// the caller's preparation of the container instead of following it. It
// waits until Launch says go, or exits when Close (or the caller's exit)
// ends the wait.
type Monitor struct {
	bundle  string
	cmd     *exec.Cmd
	report  *os.File // the read end of the report pipe
	control *os.File // our end of the control socket
	once    sync.Once
}

// Prestart starts `exe shim --monitor --prestarted bundle` detached (a new
// session, stdio on /dev/null; the caller's child until the caller exits,
// reaped by a goroutine meanwhile) for a bundle that is still to be
// written. Launch then sets it going; Close sends it away.
func Prestart(exe, bundle string) (*Monitor, error) {
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	defer w.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "shim control"), os.NewFile(uintptr(fds[1]), "shim control")
	defer theirs.Close()
	// The monitor starts directly, in a session of its own: one Go
	// process start less than going through `berth shim`.
	cmd := exec.Command(exe, "shim", monitorArg, prestartArg, bundle)
	cmd.Args[0] = "berth"
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{w, theirs} // reportFD, controlFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		ours.Close()
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	go cmd.Wait()
	return &Monitor{bundle: bundle, cmd: cmd, report: r, control: ours}, nil
}

// Bundle is the bundle the monitor is for.
func (m *Monitor) Bundle() string { return m.bundle }

// Pid is the monitor's process id.
func (m *Monitor) Pid() int { return m.cmd.Process.Pid }

// Close sends away a monitor that Launch was not called for: it exits
// without doing anything. After Launch it does nothing.
func (m *Monitor) Close() {
	if m == nil {
		return
	}
	m.once.Do(func() {
		m.control.Close()
		m.report.Close()
	})
}

// Launch has the monitor create the container of its bundle, which must
// be written by now, and returns once it has: the runtime's create is
// done, the socket listens and the state is "created". On failure it returns the create error, classified
// (errors.Is works with oci.ErrExecNotFound and the errdefs classes), and
// nothing is left behind: no shim, no runtime state, no rootfs mount.
//
// hold, when not nil, is a file (the caller's lock) that the shim keeps
// open until its launch is over: reported, or, when the report cannot
// reach a caller that died meanwhile, torn down. A lock on it thus
// outlasts a caller killed during the launch for as long as the launch
// has effects. A Monitor launches once.
func (m *Monitor) Launch(ctx context.Context, hold *os.File) error {
	launched := false
	m.once.Do(func() { launched = true })
	if !launched {
		return fmt.Errorf("launch shim: monitor already used: %w", errdefs.ErrFailedPrecondition)
	}
	defer m.report.Close()
	var rights []byte
	if hold != nil {
		rights = unix.UnixRights(int(hold.Fd()))
	}
	// A monitor that died early has left its report; read it either way.
	err := unix.Sendmsg(int(m.control.Fd()), []byte("go"), rights, nil, 0)
	m.control.Close()
	if err != nil && !errors.Is(err, unix.EPIPE) && !errors.Is(err, unix.ECONNREFUSED) {
		return fmt.Errorf("launch shim: %w", err)
	}
	type result struct {
		data []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		data, err := io.ReadAll(io.LimitReader(m.report, 1<<16))
		got <- result{data, err}
	}()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		// Closing our end makes the shim's report fail, and a shim
		// that cannot report takes everything down again.
		m.report.Close()
		return ctx.Err()
	}
	var rep report
	if err := json.Unmarshal(bytes.TrimSpace(res.data), &rep); err != nil {
		return fmt.Errorf("shim for %s exited without reporting: %w", m.bundle, errdefs.ErrUnavailable)
	}
	if err := rep.err(); err != nil {
		if rep.Pid > 0 {
			// It takes everything down before it exits.
			wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			waitPidGone(wctx, rep.Pid, nil)
			cancel()
		}
		return err
	}
	return nil
}

// awaitLaunch is the prestarted monitor's side of Launch: it waits for the
// word to go and the file to hold. An error means no launch comes.
func awaitLaunch() (hold *os.File, err error) {
	defer unix.Close(controlFD)
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(controlFD, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, io.EOF // Close, or the launcher exited
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil && len(msgs) == 1 {
				if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
					hold = os.NewFile(uintptr(fds[0]), "hold")
				}
			}
		}
		return hold, nil
	}
}
