package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime"
	"golang.org/x/sys/unix"
)

// The statuses of State.Status, Docker's names.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

// The statuses of Health.Status.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// State is StateDir/state.json. The shim writes it on every change; the
// engine reads it, and writes it itself only while no shim runs.
type State struct {
	Status       string    `json:"status"` // created, running, paused, restarting, exited, dead
	Pid          int       `json:"pid"`
	ExitCode     int       `json:"exitCode"`
	OOMKilled    bool      `json:"oomKilled"`
	Error        string    `json:"error,omitempty"`
	StartedAt    time.Time `json:"startedAt"`
	FinishedAt   time.Time `json:"finishedAt"`
	RestartCount int       `json:"restartCount"`
	// ManualStop is set by Stop and Kill (Docker's HasBeenManuallyStopped):
	// unless-stopped containers do not come back after it.
	ManualStop bool    `json:"manualStop,omitempty"`
	Health     *Health `json:"health,omitempty"`
	ShimPid    int     `json:"shimPid,omitempty"`
	// ShimStart is field 22 of /proc/<ShimPid>/stat, against pid reuse.
	ShimStart uint64 `json:"shimStart,omitempty"`
}

// Health is the state of a container's health check.
type Health struct {
	Status        string         `json:"status"` // starting, healthy, unhealthy
	FailingStreak int            `json:"failingStreak"`
	Log           []HealthResult `json:"log"` // the last 5
}

// HealthResult is one run of a health check.
type HealthResult struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"`
	Output   string    `json:"output"` // at most 4096 bytes
}

const stateFile = "state.json"

// ReadState reads dir/state.json; errdefs.ErrNotFound when it is absent.
func ReadState(dir string) (State, error) {
	var st State
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("shim state in %s: %w", dir, errdefs.ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("read shim state: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("decode shim state %s: %v: %w", dir, err, errdefs.ErrInvalidArgument)
	}
	return st, nil
}

// WriteState writes dir/state.json atomically: a temporary file, fsync,
// rename.
func WriteState(dir string, st State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode shim state: %w", err)
	}
	return writeState(dir, data)
}

// writeState writes the encoded state data to dir/state.json atomically.
func writeState(dir string, data []byte) error {
	f, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("write shim state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, stateFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write shim state: %w", err)
	}
	return nil
}

// ShimAlive reports whether the shim that wrote s still runs: ShimPid is
// alive and started at ShimStart.
func (s State) ShimAlive() bool {
	if s.ShimPid <= 0 {
		return false
	}
	start, err := procStart(s.ShimPid)
	return err == nil && start == s.ShimStart
}

// WaitGone waits until the shim that wrote s has exited, or ctx ends.
// It watches the shim's pidfd: no polling, so a waiter learns of the end
// at once.
func (s State) WaitGone(ctx context.Context) error {
	if s.ShimPid <= 0 {
		return nil
	}
	return waitPidGone(ctx, s.ShimPid, s.ShimAlive)
}

// waitPidGone waits until process pid has exited (a zombie counts), or
// ctx ends, by its pidfd. same, when not nil, says once the pidfd is
// open whether pid still names the process meant (and not a reuse).
func waitPidGone(ctx context.Context, pid int, same func() bool) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // gone already
	}
	defer unix.Close(fd)
	if same != nil && !same() {
		return nil
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// In slices, to notice ctx.
		n, err := unix.Poll(fds, 50)
		if n > 0 || err != nil && err != unix.EINTR {
			return nil
		}
	}
}

// procStart names one process for good with its pid: its start time.
var procStart = runtime.ProcessStartTime

// claimFile, in the bundle, names a process that will remove the
// container itself once it has exited (the command of a foreground
// `run --rm`): while that process lives, the shim leaves its exit command
// undone.
const claimFile = "exit-claim"

// ClaimExit records that the calling process will do the exit command's
// work for the container of bundle.
func ClaimExit(bundle string) error {
	pid := os.Getpid()
	start, err := procStart(pid)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, claimFile), []byte(fmt.Sprintf("%d %d\n", pid, start)), 0o600)
}

// WithdrawExitClaim gives the exit command back to the shim.
func WithdrawExitClaim(bundle string) {
	os.Remove(filepath.Join(bundle, claimFile))
}

// exitClaimed reports whether a live process has claimed the exit.
func exitClaimed(bundle string) bool {
	data, err := os.ReadFile(filepath.Join(bundle, claimFile))
	if err != nil {
		return false
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(string(data), "%d %d", &pid, &start); err != nil {
		return false
	}
	got, err := procStart(pid)
	return err == nil && got == start
}
