package engine

import (
	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// initPath is where --init puts the init in the container: Docker's path
// for tini, which images and scripts expect.
const initPath = "/sbin/docker-init"

// applyInit gives a container run with --init its init, as Docker does:
// the berth binary itself (it is docker-init when called by that name;
// package initproc), bind-mounted read-only at /sbin/docker-init, runs
// the container's command after "--" as its only child.
//
// The binary must be able to run inside the container's rootfs: the
// static one `make` builds can, anywhere.
func (e *Engine) applyInit(s *specs.Spec) error {
	if s.Process == nil || len(s.Process.Args) == 0 {
		return errorf(errdefs.ErrInvalidArgument, "--init: the container has no command to run")
	}
	s.Mounts = append(s.Mounts, specs.Mount{
		Destination: initPath,
		Type:        "bind",
		Source:      e.exe,
		Options:     []string{"bind", "ro"},
	})
	s.Process.Args = append([]string{initPath, "--"}, s.Process.Args...)
	return nil
}
