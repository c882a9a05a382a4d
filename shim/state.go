package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
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

// procStart returns field 22 of /proc/pid/stat (start time in clock ticks
// since boot), which with the pid names one process for good. A zombie
// counts as gone.
func procStart(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	// Fields after ")": state is field 3, starttime field 22.
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d has exited: %w", pid, errdefs.ErrNotFound)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

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
