package oci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/berth-dev/berth/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// builtin calls package runtime in this process. Its init is this very
// binary re-executed as `<exe> init`: the binary's main must call
// runtime.Init for that role.
type builtin struct {
	r *runtime.Runtime
}

func newBuiltin(root string, log *slog.Logger) (*builtin, error) {
	r, err := runtime.New(root, false, log)
	if err != nil {
		return nil, err
	}
	return &builtin{r: r}, nil
}

func (b *builtin) Create(ctx context.Context, id, bundle string, stdio [3]*os.File, consoleSocket *os.File) (int, error) {
	if err := b.r.Create(ctx, runtime.CreateOpts{ID: id, Bundle: bundle, Console: consoleSocket, Stdio: stdio}); err != nil {
		// The runtime looks the program up before init reports ready,
		// so a missing or non-executable program fails Create.
		return 0, classifyExec(err)
	}
	st, err := b.r.State(id)
	if err == nil && st.Pid <= 0 {
		err = fmt.Errorf("container %s: init exited during create", id)
	}
	if err != nil {
		b.r.Delete(ctx, id, true)
		return 0, err
	}
	return st.Pid, nil
}

func (b *builtin) Start(ctx context.Context, id string) error {
	return b.r.Start(ctx, id)
}

func (b *builtin) Kill(ctx context.Context, id string, sig unix.Signal, all bool) error {
	return b.r.Kill(id, sig, all)
}

// Delete kills a created container (or, with force, a running or paused
// one) and waits for its init to exit before the runtime deletes it: the
// runtime reaps an init it kills, but the caller reaps init here, for its
// exit status. A dead, unreaped init counts as stopped.
func (b *builtin) Delete(ctx context.Context, id string, force bool) error {
	if st, err := b.r.State(id); err == nil && st.Pid > 0 {
		switch st.Status {
		case runtime.Created:
			b.killInit(id, st.Pid)
		case runtime.Running, runtime.Paused:
			if force {
				if st.Status == runtime.Paused {
					b.r.Resume(id) // a frozen process dies only once thawed
				}
				b.killInit(id, st.Pid)
			}
		}
	}
	return b.r.Delete(ctx, id, force)
}

// killInit SIGKILLs every process of container id and waits up to ten
// seconds for its init, pid, to exit, without reaping it.
func (b *builtin) killInit(id string, pid int) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(pidfd)
	if b.r.Kill(id, unix.SIGKILL, true) != nil {
		return
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Poll(fds, 100)
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			return
		}
	}
}

func (b *builtin) Pause(ctx context.Context, id string) error { return b.r.Pause(id) }

func (b *builtin) Resume(ctx context.Context, id string) error { return b.r.Resume(id) }

func (b *builtin) Exec(ctx context.Context, id string, p *specs.Process, stdio [3]*os.File, consoleSocket *os.File) (int, error) {
	cp := *p // the runtime fills in defaults
	pid, err := b.r.Exec(ctx, id, &cp, runtime.ExecOpts{Console: consoleSocket, Stdio: stdio})
	if err != nil {
		return 0, classifyExec(err)
	}
	return pid, nil
}

func (b *builtin) State(ctx context.Context, id string) (*specs.State, error) {
	st, err := b.r.State(id)
	if err != nil {
		return nil, err
	}
	return &specs.State{
		Version: st.OCIVersion, ID: st.ID, Status: specs.ContainerState(st.Status),
		Pid: st.Pid, Bundle: st.Bundle, Annotations: st.Annotations,
	}, nil
}

func (b *builtin) Pids(ctx context.Context, id string) ([]int, error) { return b.r.Pids(id) }

func (b *builtin) Stats(ctx context.Context, id string) (*Stats, error) {
	s, err := b.r.Stats(id)
	if err != nil {
		return nil, err
	}
	return fromCgroup(s), nil
}

func (b *builtin) OOMKills(ctx context.Context, id string) (uint64, error) {
	return b.r.OOMKills(id)
}

func (b *builtin) Update(ctx context.Context, id string, r *specs.LinuxResources) error {
	cp := *r // the runtime fills in the device rules
	return b.r.Update(id, &cp)
}
