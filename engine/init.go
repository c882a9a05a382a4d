package engine

import (
	"debug/elf"
	"fmt"

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
// The binary runs inside the container's rootfs, so it must be static, as
// the one `make` builds is; a dynamically linked berth is refused rather
// than failing in the container as a command "not found".
func (e *Engine) applyInit(s *specs.Spec) error {
	if s.Process == nil || len(s.Process.Args) == 0 {
		return errorf(errdefs.ErrInvalidArgument, "--init: the container has no command to run")
	}
	if err := checkStatic(e.exe); err != nil {
		return err
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

// checkStatic refuses an executable that needs a dynamic loader.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("--init: read %s: %v: %w", path, err, errdefs.ErrFailedPrecondition)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errorf(errdefs.ErrFailedPrecondition, "--init: %s is dynamically linked and cannot run in a container; use a static berth (make builds one)", path)
		}
	}
	return nil
}
