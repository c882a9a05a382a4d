package oci

import (
	"context"
	"errors"
	"os"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// binary runs a runc-compatible runtime binary. (Not written yet.)
type binary struct {
	path, root string
}

var errTODO = errors.Join(errors.New("oci: Binary is not implemented yet"), errdefs.ErrNotImplemented)

func (b *binary) Create(ctx context.Context, id, bundle string, stdio [3]*os.File, consoleSocket *os.File) (int, error) {
	return 0, errTODO
}
func (b *binary) Start(ctx context.Context, id string) error { return errTODO }
func (b *binary) Kill(ctx context.Context, id string, sig unix.Signal, all bool) error {
	return errTODO
}
func (b *binary) Delete(ctx context.Context, id string, force bool) error { return errTODO }
func (b *binary) Pause(ctx context.Context, id string) error              { return errTODO }
func (b *binary) Resume(ctx context.Context, id string) error             { return errTODO }
func (b *binary) Exec(ctx context.Context, id string, p *specs.Process, stdio [3]*os.File, consoleSocket *os.File) (int, error) {
	return 0, errTODO
}
func (b *binary) State(ctx context.Context, id string) (*specs.State, error) { return nil, errTODO }
func (b *binary) Pids(ctx context.Context, id string) ([]int, error)         { return nil, errTODO }
func (b *binary) Stats(ctx context.Context, id string) (*Stats, error)       { return nil, errTODO }
func (b *binary) OOMKills(ctx context.Context, id string) (uint64, error)    { return 0, errTODO }
func (b *binary) Update(ctx context.Context, id string, r *specs.LinuxResources) error {
	return errTODO
}
