package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/shim"
	"github.com/berth-dev/berth/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOptions are `exec`'s flags.
type ExecOptions struct {
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	Tty        bool
	Privileged bool
	// Stdio are the process's stdin, stdout and stderr (nil: /dev/null).
	Stdio [3]*os.File
	// Console, with Tty, is a connected unix socket that receives the
	// terminal's master.
	Console *os.File
	// ConsoleSize is the terminal's initial [height, width] (zeros: the
	// kernel's default).
	ConsoleSize [2]uint
}

// consoleBox is the initial size of a process's terminal: [height, width]
// when it has a terminal and both are known, else nil (the kernel's).
func consoleBox(tty bool, size [2]uint) *specs.Box {
	if !tty || size[0] == 0 || size[1] == 0 {
		return nil
	}
	return &specs.Box{Height: size[0], Width: size[1]}
}

// HoldTerminal keeps the terminal of a detached exec (its master) open
// until the process is done with it, as Docker's daemon does for
// `exec -d -t` (shim.HoldTerminal).
func (e *Engine) HoldTerminal(master *os.File) error {
	return shim.HoldTerminal(e.exe, master)
}

// Exec starts a process in a running container, with the container's
// process settings (its environment, user, capabilities, seccomp, limits)
// but the command, working directory and user given. It returns the
// process's host pid; the caller waits for it with WaitExec. The caller
// must be a child subreaper (SetSubreaper), so that the process is its
// to reap.
func (e *Engine) Exec(ctx context.Context, ref string, o ExecOptions) (int, error) {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return 0, err
	}
	st, err := e.state(c)
	if err != nil {
		return 0, err
	}
	switch st.Status {
	case "running":
	case "paused":
		// docker names the container as it was given here (its errExecPaused(name)).
		return 0, errorf(errdefs.ErrConflict, "Container %s is paused, unpause the container before exec", ref)
	case "restarting":
		return 0, errorf(errdefs.ErrConflict, "Container %s is restarting, wait until the container is running", c.ID)
	default:
		return 0, errorf(errdefs.ErrConflict, "container %s is not running", c.ID)
	}
	if len(o.Cmd) == 0 {
		return 0, errorf(errdefs.ErrInvalidArgument, "no exec command specified")
	}
	base, err := e.bundleSpec(c.ID)
	if err != nil {
		return 0, err
	}
	p := *base.Process
	p.Args = o.Cmd
	p.Terminal = o.Tty
	p.ConsoleSize = consoleBox(o.Tty, o.ConsoleSize)
	p.Env = spec.MergeEnv(p.Env, o.Env)
	if o.Tty && !slices.ContainsFunc(p.Env, func(v string) bool { return strings.HasPrefix(v, "TERM=") }) {
		p.Env = append(p.Env, "TERM=xterm")
	}
	if o.WorkingDir != "" {
		p.Cwd = o.WorkingDir
	}
	if o.User != "" {
		rootfs, err := e.snapshots.Mounts(ctx, c.Snapshot)
		if err != nil {
			return 0, err
		}
		if p.User, _, err = spec.ExecUser(o.User, layeredUsers(rootfs)); err != nil {
			return 0, err
		}
	}
	if o.Privileged {
		caps := spec.AllCapabilities()
		p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}
	rt, err := e.ociRuntime(c.HostConfig.Runtime)
	if err != nil {
		return 0, err
	}
	pid, err := rt.Exec(ctx, c.ID, &p, o.Stdio, o.Console)
	if err != nil {
		return 0, fmt.Errorf("OCI runtime exec failed: exec failed: unable to start container process: %w", err)
	}
	e.containerEvent(ctx, c, "exec_start: "+strings.Join(o.Cmd, " "), nil)
	return pid, nil
}

// bundleSpec reads the OCI spec the container runs with.
func (e *Engine) bundleSpec(id string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(e.bundleDir(id), "config.json"))
	if err != nil {
		return nil, errorf(errdefs.ErrConflict, "container %s is not running", id)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if s.Process == nil {
		return nil, errors.New("container's spec has no process")
	}
	return &s, nil
}

// SetSubreaper makes the calling process the reaper of the processes its
// children leave, as Exec needs.
func SetSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// WaitExec waits for an exec'd process and returns its exit status as
// Docker reports it (128+n for a signal).
func WaitExec(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}
