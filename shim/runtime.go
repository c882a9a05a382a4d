package shim

import (
	"context"
	"log/slog"
	"os"

	"github.com/berth-dev/berth/oci"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ociRuntime is the part of oci.Runtime the shim drives.
type ociRuntime interface {
	Create(ctx context.Context, id, bundle string, stdio [3]*os.File, consoleSocket *os.File) (int, error)
	Start(ctx context.Context, id string) error
	Kill(ctx context.Context, id string, sig unix.Signal, all bool) error
	Delete(ctx context.Context, id string, force bool) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Exec(ctx context.Context, id string, p *specs.Process, stdio [3]*os.File, consoleSocket *os.File) (int, error)
	OOMKills(ctx context.Context, id string) (uint64, error)
}

// The runtime's classes of a program that cannot be run.
var (
	errExecNotFound   = oci.ErrExecNotFound
	errExecPermission = oci.ErrExecPermission
)

// openRuntime is berth's runtime in-process, or the runc-compatible
// binary cfg.Runtime.
func openRuntime(cfg Config, log *slog.Logger) (ociRuntime, error) {
	if cfg.Runtime == "" {
		return oci.Builtin(cfg.RuntimeRoot, log)
	}
	return oci.Binary(cfg.Runtime, cfg.RuntimeRoot), nil
}
