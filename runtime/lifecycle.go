package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/cgroup"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Start releases the init of a created container into the user's process
// and runs the poststart hooks.
func (r *Runtime) Start(ctx context.Context, id string) error {
	st, err := r.load(id)
	if err != nil {
		return err
	}
	switch s := r.status(st); s {
	case Created:
	case Stopped:
		return fmt.Errorf("cannot start a container that has stopped: %w", errdefs.ErrFailedPrecondition)
	default:
		return fmt.Errorf("cannot start an already %s container: %w", s, errdefs.ErrFailedPrecondition)
	}
	fifoPath := filepath.Join(r.dir(id), "exec.fifo")
	if err := releaseFifo(fifoPath, st.Pid); err != nil {
		return err
	}
	os.Remove(fifoPath)
	if h := st.Config.Hooks; h != nil {
		if err := runHooks(ctx, "poststart", h.Poststart, r.ociState(st, Running)); err != nil {
			r.Log.WarnContext(ctx, "poststart hook failed", "id", id, "err", err)
		}
	}
	return nil
}

// releaseFifo opens the exec fifo for reading, which lets init's blocked
// open for writing complete, reads the byte init writes and waits for init
// to close its end, which it does at execve. It watches
// init's pidfd so that a dead init is an error rather than a hang.
func releaseFifo(path string, pid int) error {
	// The pidfd first: once the fifo is open, init may run the program,
	// which may exit and be reaped before we look.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("container init %d exited before it was started: %w", pid, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	got := false
	for {
		var buf [1]byte
		n, err := unix.Read(fd, buf[:])
		if n == 1 {
			got = true
			continue
		}
		if got && n == 0 && err == nil {
			// Init closed its end: it ran the startContainer hooks
			// and exec'd the user's process (or died trying).
			return nil
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("read exec fifo: %w", err)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 1000); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll exec fifo: %w", err)
		}
		if !got && fds[1].Revents&unix.POLLIN != 0 && fds[0].Revents&unix.POLLIN == 0 {
			return errors.New("container init exited before it was started")
		}
	}
}

// Kill sends sig to the container's init, or with all to every process
// in its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	st, err := r.load(id)
	if err != nil {
		return err
	}
	if r.status(st) == Stopped {
		return fmt.Errorf("container not running: %w", errdefs.ErrFailedPrecondition)
	}
	if all {
		cg, err := r.cgroup(st)
		if err != nil {
			return err
		}
		return cg.Signal(sig)
	}
	return signalInit(st, sig)
}

// signalInit signals init through a pidfd, after checking that the pid
// still names it, so that a reused pid is never hit.
func signalInit(st *State, sig unix.Signal) error {
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return fmt.Errorf("container not running: %w", errdefs.ErrFailedPrecondition)
	}
	defer unix.Close(pidfd)
	if !alive(st.Pid, st.StartTime) {
		return fmt.Errorf("container not running: %w", errdefs.ErrFailedPrecondition)
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %d to init: %w", sig, err)
	}
	return nil
}

// killWait SIGKILLs pid (if start is 0, without checking its start time)
// and waits up to ten seconds for it to be gone.
func killWait(pid int, start uint64) {
	if pid <= 0 {
		return
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(pidfd)
	if start != 0 && !alive(pid, start) {
		return
	}
	unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Poll(fds, 100)
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			break
		}
	}
	// Reap it if it is our child (create without a pid namespace).
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, unix.WNOHANG, nil)
}

// Delete removes a stopped or created container; with force it kills a
// running one first. Poststop hooks run last.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	st, err := r.load(id)
	if err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	switch s := r.status(st); s {
	case Stopped:
	case Created:
		killWait(st.Pid, st.StartTime)
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s: %w", id, s, errdefs.ErrFailedPrecondition)
		}
		if cg, err := r.cgroup(st); err == nil {
			if s == Paused {
				cg.Thaw()
			}
			cg.Signal(unix.SIGKILL)
		}
		killWait(st.Pid, st.StartTime)
	}
	return r.destroy(ctx, st)
}

// destroy removes what a stopped container still holds.
func (r *Runtime) destroy(ctx context.Context, st *State) error {
	var errs []error
	if cg, err := r.cgroup(st); err == nil {
		cg.Signal(unix.SIGKILL) // stragglers of an init that died first
		if err := cg.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	if !hasNS(st.Config, specs.MountNamespace) {
		// It mounted into the runtime's own mount namespace.
		if err := unmountUnder(st.Rootfs); err != nil {
			errs = append(errs, err)
		}
	}
	if h := st.Config.Hooks; h != nil {
		if err := runHooks(ctx, "poststop", h.Poststop, r.ociState(st, Stopped)); err != nil {
			r.Log.WarnContext(ctx, "poststop hook failed", "id", st.ID, "err", err)
		}
	}
	if err := os.RemoveAll(r.dir(st.ID)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loadCgroup reads container id's state and opens its cgroup, refusing
// with ErrFailedPrecondition unless its status is one of want (any, if
// want is empty).
func (r *Runtime) loadCgroup(id string, want ...Status) (*State, cgroup.Manager, error) {
	st, err := r.load(id)
	if err != nil {
		return nil, nil, err
	}
	if len(want) > 0 {
		s := r.status(st)
		if !slices.Contains(want, s) {
			if want[0] == Paused {
				return nil, nil, fmt.Errorf("container not paused: %w", errdefs.ErrFailedPrecondition)
			}
			return nil, nil, fmt.Errorf("container not running: %s: %w", s, errdefs.ErrFailedPrecondition)
		}
	}
	cg, err := r.cgroup(st)
	return st, cg, err
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error {
	_, cg, err := r.loadCgroup(id, Running, Created)
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	_, cg, err := r.loadCgroup(id, Paused)
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// Pids lists the host pids of every process in the container.
func (r *Runtime) Pids(id string) ([]int, error) {
	_, cg, err := r.loadCgroup(id)
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Spec returns the configuration container id was created with.
func (r *Runtime) Spec(id string) (*specs.Spec, error) {
	st, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return st.Config, nil
}

// Stats reports the resource usage of container id.
func (r *Runtime) Stats(id string) (*cgroup.Stats, error) {
	_, cg, err := r.loadCgroup(id)
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// OOMKills reports how many processes of container id the OOM killer took.
func (r *Runtime) OOMKills(id string) (uint64, error) {
	_, cg, err := r.loadCgroup(id)
	if err != nil {
		return 0, err
	}
	return cg.OOMKills()
}

// Update applies new resource limits to a container and records them.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	st, cg, err := r.loadCgroup(id, Created, Running, Paused)
	if err != nil {
		return err
	}
	if res.Devices == nil && st.Config.Linux.Resources != nil {
		res.Devices = st.Config.Linux.Resources.Devices
	}
	cp, lin := *st.Config, *st.Config.Linux
	lin.Resources, cp.Linux = res, &lin
	if err := cg.Set(withDeviceRules(&cp)); err != nil {
		return err
	}
	st.Config = &cp // a new spec: the one loaded may be shared (stateMemo)
	return r.save(st)
}
