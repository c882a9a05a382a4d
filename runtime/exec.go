package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/cgroup"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOpts are the options of `exec`.
type ExecOpts struct {
	Console      *os.File // connected console socket, for a terminal
	PreserveFDs  int
	IgnorePaused bool
	Stdio        [3]*os.File
	PidFile      string
	OnStarted    func(pid int) // called once the process runs (may be nil)
}

// Exec runs p in the namespaces and cgroup of the running container id.
// It returns the new process's host pid once it has exec'd; the caller
// reaps it (the runtime has made itself a subreaper for that).
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, o ExecOpts) (int, error) {
	defer cgroup.Warm()() // as in Create: the move into the cgroup
	st, err := r.load(id)
	if err != nil {
		return 0, err
	}
	switch s := r.status(st); {
	case s == Stopped:
		return 0, fmt.Errorf("cannot exec in a stopped container: %w", errdefs.ErrFailedPrecondition)
	case s == Paused && !o.IgnorePaused:
		return 0, fmt.Errorf("cannot exec in a paused container (use --ignore-paused to override): %w", errdefs.ErrFailedPrecondition)
	}
	if len(p.Args) == 0 {
		return 0, invalid("process args must not be empty")
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if p.Terminal && o.Console == nil {
		return 0, invalid("cannot allocate a tty without a console socket (--console-socket)")
	}
	spec := st.Config
	l := &launch{stdio: o.Stdio, pidfdPid: st.Pid}
	for i := 0; i < o.PreserveFDs; i++ {
		l.files = append(l.files, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(i)))
	}
	cfg := initConfig{Mode: "exec", Spec: spec, Process: p, PreserveFDs: o.PreserveFDs, State: r.ociState(st, Running)}
	if o.Console != nil {
		l.files = append(l.files, o.Console)
		cfg.ConsoleFD = 2 + len(l.files)
	}
	for _, ns := range spec.Linux.Namespaces {
		k := nsKinds[ns.Type]
		l.joins = append(l.joins, string(ns.Type)+":/proc/"+strconv.Itoa(st.Pid)+"/ns/"+k.proc)
		if ns.Type == specs.PIDNamespace || ns.Type == specs.TimeNamespace {
			l.fork = true
		}
	}
	cg, err := r.cgroup(st)
	if err != nil {
		return 0, err
	}
	l.cgroup = cg
	if fd, err := cg.DirFD(); err == nil {
		l.cgroupFD = fd
		defer fd.Close()
	}
	s, err := l.start()
	if err != nil {
		return 0, err
	}
	defer s.conn.close()
	if s.placed != nil {
		cfg.Placement = "early"
	}
	if err := s.conn.send(cfg); err != nil {
		killWait(s.pid, 0)
		return 0, err
	}
	prlimitFromParent(s.pid, p.Rlimits)
	if p.OOMScoreAdj != nil {
		os.WriteFile("/proc/"+strconv.Itoa(s.pid)+"/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0)
	}
	if o.OnStarted != nil {
		o.OnStarted(s.pid)
	}
	if err := r.drive(ctx, s, cfg, st); err != nil {
		killWait(s.pid, 0)
		return 0, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, s.pid); err != nil {
			return s.pid, err
		}
	}
	return s.pid, nil
}

// forwardListener passes a seccomp listener fd to the agent at the
// profile's listenerPath, with the container process state the spec
// describes.
func (r *Runtime) forwardListener(cfg initConfig, st *State, fds []int) error {
	sc := cfg.Spec.Linux.Seccomp
	if len(fds) != 1 {
		return fmt.Errorf("seccomp listener: got %d fds", len(fds))
	}
	if sc == nil || sc.ListenerPath == "" {
		return nil // nobody listens; the fd is closed
	}
	state := specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: st.Pid,
		Metadata: sc.ListenerMetadata, State: r.ociState(st, Creating),
	}
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	c, err := net.Dial("unix", sc.ListenerPath)
	if err != nil {
		return fmt.Errorf("seccomp listener %s: %w", sc.ListenerPath, err)
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	if _, _, err := uc.WriteMsgUnix(data, unix.UnixRights(fds[0]), nil); err != nil {
		return fmt.Errorf("send seccomp listener fd: %w", err)
	}
	return nil
}
