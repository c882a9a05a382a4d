// Package oci drives an OCI runtime for the shim and the engine: berth's
// own runtime in-process, or any binary with runc's command line.
//
// Builtin calls package runtime directly: no extra process, which keeps
// container start fast. Binary runs a runc-compatible binary (runc, crun,
// berth-runtime) once per call, with --log-format json so that its error
// messages can be returned as errors.
//
// Both return errors that wrap ErrExecNotFound or ErrExecPermission when
// the container's program cannot be run (the engine's exit codes 127 and
// 126), errdefs.ErrNotFound for a container that does not exist.
package oci

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"

	"github.com/berth-dev/berth/runtime/cgroup"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Runtime is one OCI runtime over one state root.
type Runtime interface {
	// Create creates container id from bundle (holding config.json and the rootfs). stdio are the
	// container process's stdin/stdout/stderr (a nil entry → /dev/null). When consoleSocket is not
	// nil (config.json has process.terminal=true) it is a connected unix socket on which the runtime
	// sends the pty master (SCM_RIGHTS), as runc's --console-socket. Returns init's host pid.
	// The caller must be a child subreaper (unix.Prctl(PR_SET_CHILD_SUBREAPER)) and reaps init.
	// On failure nothing is left (no state, no cgroup, no process).
	Create(ctx context.Context, id, bundle string, stdio [3]*os.File, consoleSocket *os.File) (pid int, err error)
	Start(ctx context.Context, id string) error
	Kill(ctx context.Context, id string, sig unix.Signal, all bool) error
	Delete(ctx context.Context, id string, force bool) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// Exec runs p inside running container id; returns the host pid once it has exec'd. The caller
	// reaps it. Same stdio/consoleSocket contract as Create.
	Exec(ctx context.Context, id string, p *specs.Process, stdio [3]*os.File, consoleSocket *os.File) (pid int, err error)
	// State: Status is "created", "running", "paused" or "stopped"; errdefs.ErrNotFound when no such container.
	State(ctx context.Context, id string) (*specs.State, error)
	Pids(ctx context.Context, id string) ([]int, error)
	Stats(ctx context.Context, id string) (*Stats, error)
	// OOMKills is how many processes of the container the kernel's OOM killer has killed so far.
	OOMKills(ctx context.Context, id string) (uint64, error)
	Update(ctx context.Context, id string, r *specs.LinuxResources) error
}

// Stats is what `docker stats` shows, read from the container's cgroup.
type Stats struct {
	CPUNanos               uint64 // total CPU time used
	MemoryUsage            uint64 // bytes, as docker shows it (usage minus inactive_file / cache)
	MemoryLimit            uint64 // 0 when unlimited
	PidsCurrent, PidsLimit uint64
	BlockRead, BlockWrite  uint64 // bytes
}

// Errors an engine maps to exit codes 127 and 126 (Docker: `exec: "x":
// executable file not found in $PATH` → 127, permission denied → 126).
// Create and Exec return errors wrapping these when the container process
// cannot be exec'd.
var (
	ErrExecNotFound   = errors.New("executable file not found")
	ErrExecPermission = errors.New("executable permission denied")
)

// execError is a runtime's error about the container's program, kept as
// the runtime worded it, classified by kind.
type execError struct {
	err  error // the runtime's error
	kind error // ErrExecNotFound or ErrExecPermission
}

func (e *execError) Error() string   { return e.err.Error() }
func (e *execError) Unwrap() []error { return []error{e.kind, e.err} }

// classifyExec wraps err in ErrExecNotFound or ErrExecPermission when its
// text says the container's program could not be found or run, as
// berth's runtime and runc word it (`exec: "x": executable file not found
// in $PATH`, `exec: "/x": stat /x: no such file or directory`,
// `exec: "/x": permission denied`), or crun (`executable file `x` not
// found in $PATH`, `exec container process `/x`: Permission denied`).
// Other errors (a missing mount source, say) are returned unchanged.
func classifyExec(err error) error {
	if err == nil {
		return nil
	}
	if kind := execKind(err.Error()); kind != nil {
		return &execError{err: err, kind: kind}
	}
	return err
}

func execKind(msg string) error {
	m := strings.ToLower(msg)
	var reason string
	switch {
	case strings.Contains(m, `exec: "`):
		// berth and runc: exec: "<name>": <reason>. The name may hold
		// anything; the reason follows its closing `": `.
		rest := m[strings.LastIndex(m, `exec: "`)+len(`exec: "`):]
		i := strings.Index(rest, `": `)
		if i < 0 {
			return nil
		}
		reason = rest[i+3:]
	case strings.Contains(m, "executable file `") && strings.Contains(m, "not found"):
		return ErrExecNotFound // crun's lookup in $PATH
	case strings.Contains(m, "exec container process"):
		reason = m // crun's failed execve
	case strings.Contains(m, "open executable"):
		reason = m // crun's open of a path
	default:
		return nil
	}
	switch {
	case strings.Contains(reason, "executable file not found"),
		strings.Contains(reason, "no such file or directory"),
		strings.Contains(reason, "not a directory"):
		return ErrExecNotFound
	case strings.Contains(reason, "permission denied"),
		strings.Contains(reason, "is a directory"),
		strings.Contains(reason, "exec format error"):
		return ErrExecPermission
	}
	return nil
}

// unlimited is above any real memory limit: v1's "unlimited" is
// MaxInt64 rounded down to a page, v2's "max" is reported as MaxUint64.
const unlimited = 1 << 62

// fromCgroup turns the cgroup's counters (the "data" of `runc events
// --stats` has the same shape) into what `docker stats` shows.
func fromCgroup(c *cgroup.Stats) *Stats {
	s := &Stats{
		CPUNanos:    c.CPU.Usage.Total,
		MemoryUsage: c.Memory.Usage.Usage,
		PidsCurrent: c.Pids.Current,
		PidsLimit:   c.Pids.Limit,
	}
	if l := c.Memory.Usage.Limit; l < unlimited {
		s.MemoryLimit = l
	}
	// Docker's CLI subtracts the inactive page cache: total_inactive_file
	// on v1, inactive_file on v2.
	inactive, ok := c.Memory.Raw["total_inactive_file"]
	if !ok {
		inactive = c.Memory.Raw["inactive_file"]
	}
	if inactive < s.MemoryUsage {
		s.MemoryUsage -= inactive
	}
	for _, e := range c.Blkio.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			s.BlockRead += e.Value
		case "write":
			s.BlockWrite += e.Value
		}
	}
	return s
}

// Builtin is berth's own runtime (package runtime), called in-process, state under root.
func Builtin(root string, log *slog.Logger) (Runtime, error) {
	return newBuiltin(root, log)
}

// Binary is a runc-compatible runtime binary at path (runc, crun, berth-runtime), state under root (`--root`).
func Binary(path, root string) Runtime {
	return &binary{path: path, root: root}
}
