package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/logs"
	"github.com/berth-dev/berth/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// shim is the monitor of one container.
type shim struct {
	cfg     Config
	rt      ociRuntime
	process *specs.Process // config.json's, the template of health probes
	logw    *logs.Writer   // nil without a log
	log     *slog.Logger
	mounted bool

	clients clients

	mu       sync.Mutex
	st       State
	saved    []byte // st as this shim last wrote it
	cur      *run
	lastExit *Exit
	waiters  map[chan Exit]struct{}
	// cancelled says no restart follows the next exit (Docker's
	// ExitOnNext); wake cuts a back-off short.
	cancelled bool
	wake      chan struct{}
	backoff   time.Duration
	done      chan struct{} // closed once the final exit is recorded
}

// run is one creation of the container's process.
type run struct {
	pid     int
	io      *stdio
	exit    <-chan unix.WaitStatus // from the reaper
	exited  chan struct{}          // closed once the exit is recorded
	copiers sync.WaitGroup
	oomBase uint64
	started bool
	// stdinOnce is set once a client's stdin has ended under StdinOnce.
	stdinOnce bool
	health    context.CancelFunc
}

// loadConfig reads bundle/shim.json and the process of bundle/config.json.
func loadConfig(bundle string) (Config, *specs.Process, error) {
	cfg, err := readShimConfig(bundle)
	if err != nil {
		return cfg, nil, err
	}
	data, err := os.ReadFile(filepath.Join(cfg.Bundle, "config.json"))
	if err != nil {
		return cfg, nil, fmt.Errorf("read runtime spec: %w", err)
	}
	// Only the process: decoding the whole spec (its seccomp profile
	// above all) was the monitor's largest cost at start.
	var spec struct {
		Process *specs.Process `json:"process"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return cfg, nil, fmt.Errorf("decode runtime spec: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if spec.Process == nil {
		return cfg, nil, fmt.Errorf("runtime spec has no process: %w", errdefs.ErrInvalidArgument)
	}
	return cfg, spec.Process, nil
}

// readShimConfig reads and checks the bundle's shim.json.
func readShimConfig(bundle string) (Config, error) {
	var cfg Config
	data, err := os.ReadFile(filepath.Join(bundle, "shim.json"))
	if err != nil {
		return cfg, fmt.Errorf("read shim config: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("decode shim config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if cfg.Bundle == "" {
		cfg.Bundle = bundle
	}
	if cfg.ID == "" || cfg.StateDir == "" || cfg.SocketPath == "" {
		return cfg, fmt.Errorf("shim config needs ID, StateDir and SocketPath: %w", errdefs.ErrInvalidArgument)
	}
	if _, err := restartPolicy(cfg.Restart); err != nil {
		return cfg, err
	}
	if cfg.StopSignal != "" {
		if _, err := parseSignal(cfg.StopSignal); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

func restartPolicy(p RestartPolicy) (string, error) {
	switch p.Name {
	case "", "no":
		return "no", nil
	case "always", "unless-stopped":
		if p.MaxRetries != 0 {
			return "", fmt.Errorf("maximum retry count cannot be used with restart policy '%s': %w", p.Name, errdefs.ErrInvalidArgument)
		}
		return p.Name, nil
	case "on-failure":
		if p.MaxRetries < 0 {
			return "", fmt.Errorf("maximum retry count cannot be negative: %w", errdefs.ErrInvalidArgument)
		}
		return p.Name, nil
	}
	return "", fmt.Errorf("invalid restart policy '%s': %w", p.Name, errdefs.ErrInvalidArgument)
}

// setup mounts the rootfs and opens the log.
func (s *shim) setup() error {
	if len(s.cfg.Rootfs) > 0 {
		if err := mount.All(s.cfg.Rootfs, filepath.Join(s.cfg.Bundle, "rootfs")); err != nil {
			return fmt.Errorf("mount rootfs: %w", err)
		}
		s.mounted = true
	}
	if s.cfg.LogPath != "" {
		w, err := logs.NewWriter(s.cfg.LogPath, s.cfg.LogOptions)
		if err != nil {
			return err
		}
		s.logw = w
	}
	return nil
}

// teardown deletes the runtime's container, unmounts the rootfs and
// closes the log: what the final exit and a failed launch share.
func (s *shim) teardown(ctx context.Context) {
	if err := s.rt.Delete(ctx, s.cfg.ID, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		s.log.Warn("delete container", "err", err)
	}
	if s.mounted {
		target := filepath.Join(s.cfg.Bundle, "rootfs")
		for range s.cfg.Rootfs {
			if err := mount.Unmount(target, 0); err != nil {
				s.log.Warn("unmount rootfs", "err", err)
				mount.Unmount(target, unix.MNT_DETACH)
			}
		}
		s.mounted = false
	}
	if s.logw != nil {
		s.logw.Close()
	}
}

// create creates the container's process and starts watching it; it
// becomes s.cur.
func (s *shim) create(ctx context.Context) error {
	sio, err := newStdio(&s.cfg)
	if err != nil {
		return err
	}
	pid, err := s.rt.Create(ctx, s.cfg.ID, s.cfg.Bundle, sio.child, sio.sockTo)
	sio.closeChild()
	if err == nil && s.cfg.Tty {
		if err = sio.receiveConsole(&s.cfg, 10*time.Second); err != nil {
			s.rt.Delete(ctx, s.cfg.ID, true)
		}
	}
	if err != nil {
		sio.close()
		return err
	}
	r := &run{pid: pid, io: sio, exit: waitPid(pid), exited: make(chan struct{})}
	if r.oomBase, err = s.rt.OOMKills(ctx, s.cfg.ID); err != nil {
		s.log.Warn("read OOM kills", "err", err)
	}
	streams := []struct {
		name string
		typ  byte
	}{{"stdout", frameStdout}, {"stderr", frameStderr}}
	for i, f := range sio.outputs {
		r.copiers.Add(1)
		go func() {
			defer r.copiers.Done()
			s.copyOutput(f, streams[i].name, streams[i].typ)
		}()
	}
	s.mu.Lock()
	s.cur = r
	s.st.Pid = pid
	s.mu.Unlock()
	return nil
}

// startLocked starts the created process of s.cur; s.mu is held.
func (s *shim) startLocked(ctx context.Context) error {
	r := s.cur
	if err := s.rt.Start(ctx, s.cfg.ID); err != nil {
		return err
	}
	r.started = true
	s.st.Status = StatusRunning
	s.st.StartedAt = time.Now().UTC()
	s.st.Pid = r.pid
	s.st.Error = ""
	if h := s.cfg.Health; h != nil && len(h.Test) > 0 && h.Test[0] != "NONE" {
		s.st.Health = &Health{Status: HealthStarting, Log: []HealthResult{}}
		hctx, cancel := context.WithCancel(context.Background())
		r.health = cancel
		go s.healthLoop(hctx, r, s.st.StartedAt)
	}
	s.saveLocked()
	return nil
}

// start serves a client's Start: the created container runs.
func (s *shim) start(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Status != StatusCreated || s.cur == nil || s.cur.started {
		return 0, fmt.Errorf("container %s is %s, not created: %w", s.cfg.ID, s.st.Status, errdefs.ErrConflict)
	}
	s.st.ManualStop = false
	if err := s.startLocked(ctx); err != nil {
		// The created process is killed, and its exit ends the shim
		// with the code Docker records for a start that failed.
		s.st.Error = err.Error()
		s.st.ExitCode = startFailureCode(err)
		s.cancelled = true
		s.saveLocked()
		s.rt.Kill(ctx, s.cfg.ID, unix.SIGKILL, true)
		return 0, err
	}
	return s.cur.pid, nil
}

// startFailureCode is the exit code Docker records for a process that
// could not start: 127 not found, 126 not executable, else 128.
func startFailureCode(err error) int {
	switch {
	case errors.Is(err, errExecNotFound):
		return 127
	case errors.Is(err, errExecPermission):
		return 126
	}
	return 128
}

// saveLocked writes the state; s.mu is held.
// A state the same as the one last written is not written again: each
// write replaces a file, which costs a block discard on some disks.
func (s *shim) saveLocked() {
	data, err := json.Marshal(s.st)
	if err == nil && bytes.Equal(data, s.saved) {
		return
	}
	if err == nil {
		err = writeState(s.cfg.StateDir, data)
	}
	if err != nil {
		s.log.Error("write state", "err", err)
		s.saved = nil
		return
	}
	s.saved = data
}

// outputGrace bounds the wait for a dead process's output to drain: a
// process outside the container's pid namespace may hold the pipes.
const outputGrace = 2 * time.Second

// exited records the exit of r and tells the clients; it returns whether
// the container restarts and after what delay.
func (s *shim) exited(ctx context.Context, r *run, ws unix.WaitStatus) (bool, time.Duration) {
	drained := make(chan struct{})
	go func() { r.copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(outputGrace):
	}
	r.io.close()
	oom := false
	if n, err := s.rt.OOMKills(ctx, s.cfg.ID); err == nil && n > r.oomBase {
		oom = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Taken under the lock: a Start that is still recording itself
	// (the process exited at once) comes first.
	now := time.Now().UTC()
	e := Exit{Code: exitCode(ws), OOMKilled: oom, FinishedAt: now}
	if r.health != nil {
		r.health()
	}
	if !r.started && s.st.Error != "" {
		e.Code = s.st.ExitCode // a failed start: keep its 126/127/128
	}
	s.st.Pid = 0
	s.st.ExitCode = e.Code
	s.st.OOMKilled = e.OOMKilled
	s.st.FinishedAt = now
	s.st.Status = StatusExited
	s.lastExit = &e
	restart, delay := false, time.Duration(0)
	if r.started && !s.cancelled {
		restart, delay = s.shouldRestart(e.Code, now.Sub(s.st.StartedAt))
	}
	if restart {
		s.st.Status = StatusRestarting
		s.st.RestartCount++
		s.wake = make(chan struct{})
	}
	s.saveLocked()
	if oom {
		s.event("oom", nil)
	}
	s.event("die", map[string]string{"exitCode": strconv.Itoa(e.Code)})
	s.clients.exited(e)
	for w := range s.waiters {
		w <- e
	}
	s.waiters = nil
	close(r.exited)
	return restart, delay
}

// shouldRestart is moby's restartmanager.ShouldRestart: the policy
// decides, and the delay starts at 100 ms, doubles with every restart up
// to a minute, and starts over after a run of 10 s or more.
func (s *shim) shouldRestart(code int, ran time.Duration) (bool, time.Duration) {
	// `update --restart` rewrites shim.json: the policy in force is the
	// one there now.
	if cfg, err := readShimConfig(s.cfg.Bundle); err == nil {
		s.cfg.Restart = cfg.Restart
	}
	if ran >= 10*time.Second {
		s.backoff = 0
	}
	switch {
	case s.backoff == 0:
		s.backoff = 100 * time.Millisecond
	case s.backoff < time.Minute:
		s.backoff *= 2
	}
	s.backoff = min(s.backoff, time.Minute)
	restart := false
	switch p := s.cfg.Restart; p.Name {
	case "always":
		restart = true
	case "unless-stopped":
		restart = !s.st.ManualStop
	case "on-failure":
		restart = code != 0 && (p.MaxRetries == 0 || s.st.RestartCount < p.MaxRetries)
	}
	return restart, s.backoff
}

// restart waits out the back-off, then creates and starts the container
// again. It returns false when a stop or kill cancelled the restart or the
// new process could not start.
func (s *shim) restart(ctx context.Context, delay time.Duration) bool {
	s.mu.Lock()
	wake := s.wake
	s.mu.Unlock()
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-wake:
		t.Stop()
	}
	s.mu.Lock()
	cancelled := s.cancelled
	s.mu.Unlock()
	if cancelled {
		return false
	}
	if err := s.rt.Delete(ctx, s.cfg.ID, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		s.log.Warn("delete container for restart", "err", err)
	}
	err := s.create(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.cancelled {
		// Stopped while being created: never start it.
		s.rt.Kill(ctx, s.cfg.ID, unix.SIGKILL, true)
		return true
	}
	if err == nil {
		if err = s.startLocked(ctx); err != nil {
			s.rt.Kill(ctx, s.cfg.ID, unix.SIGKILL, true)
		}
	}
	if err != nil {
		s.log.Error("restart", "err", err)
		s.st.Status = StatusExited
		s.st.Error = err.Error()
		s.st.ExitCode = startFailureCode(err)
		s.saveLocked()
		if s.cur != nil && s.cur.exit != nil && !s.cur.started {
			// The created process dies of the kill; its exit
			// ends the shim with this state.
			s.cancelled = true
			return true
		}
		return false
	}
	return true
}

// finish records the final exit: nothing restarts any more. Clients
// that came while a restart was pending (which then did not happen) get
// the final exit.
func (s *shim) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Status != StatusExited && s.st.Status != StatusDead {
		s.st.Status = StatusExited
	}
	s.saveLocked()
	e := Exit{Code: s.st.ExitCode, OOMKilled: s.st.OOMKilled, FinishedAt: s.st.FinishedAt}
	s.lastExit = &e
	s.clients.exited(e)
	for w := range s.waiters {
		w <- e
	}
	s.waiters = nil
	close(s.done)
}

// monitor follows the container from its first process to its final
// exit.
func (s *shim) monitor(ctx context.Context) {
	for {
		s.mu.Lock()
		r := s.cur
		s.mu.Unlock()
		ws := <-r.exit
		restart, delay := s.exited(ctx, r, ws)
		if !restart || !s.restart(ctx, delay) {
			break
		}
	}
	s.finish()
}

// event appends a container event to the engine's event log; a failure
// costs the event only.
func (s *shim) event(action string, extra map[string]string) {
	if s.cfg.Events == "" {
		return
	}
	attrs := maps.Clone(s.cfg.EventAttrs)
	if attrs == nil {
		attrs = map[string]string{}
	}
	maps.Copy(attrs, extra)
	events.Append(s.cfg.Events, events.New("container", action, s.cfg.ID, attrs))
}
