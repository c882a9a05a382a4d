// Package shim is the per-container monitor: `berth shim <bundle>`, one
// small process per container that outlives the CLI, as conmon does for
// podman and containerd-shim for containerd.
//
// The engine writes a Config as JSON to <bundle>/shim.json and calls
// Launch. The shim creates the container through package oci, holds its
// stdio (pipes, or the pty master when the process has a terminal),
// copies the output into the json-file log and to attached clients, reaps
// the container's init, records how it ended in StateDir/state.json,
// restarts it by policy with Docker's back-off, runs its health checks,
// and serves the engine over a unix socket (Dial, then one request per
// connection). After the final exit it deletes the container, unmounts
// its rootfs, runs the ExitCommand and exits.
//
// The wire protocol is private to this package: the client writes one
// JSON request line and the shim answers with one JSON line; an attach
// then carries frames (1 byte stream, 4-byte big-endian length, payload)
// from the shim and raw stdin bytes from the client, which half-closes
// its side for end of input.
package shim

import (
	"time"

	"github.com/berth-dev/berth/logs"
	"github.com/berth-dev/berth/mount"
)

// Config is written by the engine as JSON to <Bundle>/shim.json before
// Launch.
type Config struct {
	ID     string
	Bundle string // config.json here; rootfs at Bundle/rootfs
	// Rootfs is mounted (mount.All) onto Bundle/rootfs before the first
	// create and unmounted after the final exit. Empty: the rootfs is
	// already there.
	Rootfs []mount.Mount
	// Runtime is "" for the builtin runtime (state under RuntimeRoot), or
	// the path of a runc-compatible binary.
	Runtime     string
	RuntimeRoot string
	// StateDir receives state.json, written by the shim on every change.
	StateDir string
	// SocketPath is where the shim listens. It may be longer than
	// sun_path's 108 bytes.
	SocketPath string
	LogPath    string // json-file log; "" means no log
	LogOptions logs.Options
	// Tty says that process.terminal is true in config.json: the shim
	// passes a console socket and holds the pty master.
	Tty bool
	// OpenStdin (-i) has the shim hold the container's stdin and feed it
	// from attached clients.
	OpenStdin bool
	// StdinOnce closes the container's stdin when the first attached
	// client's stdin ends (docker run -i without -d).
	StdinOnce bool
	Restart   RestartPolicy
	Health    *Healthcheck // nil: none
	// StopSignal is Stop's default signal ("SIGTERM" when empty), as a name
	// ("SIGTERM", "TERM") or a number.
	StopSignal string
	// StopTimeout is Stop's default timeout in seconds: 10 when 0, -1 to
	// wait forever.
	StopTimeout int
	// ExitCommand runs after the final exit, once the socket is closed,
	// the rootfs unmounted and the runtime's container deleted; the shim
	// waits for it at most 30 s.
	ExitCommand []string
	// Events is the event log the shim appends the container's die, oom
	// and health_status events to ("" for none); EventAttrs are their
	// Actor's attributes (Docker's image, name and labels).
	Events     string
	EventAttrs map[string]string
}

// RestartPolicy is Docker's --restart.
type RestartPolicy struct {
	Name       string // "", "no", "always", "unless-stopped", "on-failure"
	MaxRetries int    // on-failure only; 0 means no limit
}

// Healthcheck is Docker's HEALTHCHECK.
type Healthcheck struct {
	// Test is ["CMD", args...], ["CMD-SHELL", command] or ["NONE"].
	Test []string
	// Zero durations take Docker's defaults: 30 s, 30 s, 0 and 5 s.
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int // 0 means 3
}

// Docker's health check defaults (moby daemon/health.go).
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultProbeRetries  = 3
	maxHealthLog         = 5
	maxHealthOutput      = 4096
)

// Exit is how a container's process ended.
type Exit struct {
	Code       int
	OOMKilled  bool
	FinishedAt time.Time
}
