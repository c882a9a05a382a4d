// Package cgroup creates, configures, freezes, measures and removes a
// container's cgroup on cgroup v1 and v2.
//
// The host decides the mode: when cgroup2 is the only hierarchy with
// controllers (the usual case today) New returns a v2 manager working on one
// directory of the unified tree; otherwise (legacy or hybrid hosts) it returns
// a v1 manager that keeps one directory per mounted v1 hierarchy, plus the
// name=systemd hierarchy and, on hybrid hosts, the controller-less cgroup2
// tree, so that the container's processes sit at the same path everywhere.
// Mounts are read from /proc/self/mountinfo once per process.
//
// Resources come straight from the OCI runtime spec (specs.LinuxResources);
// the conversions between v1 and v2 knobs (cpu shares to cpu.weight, blkio
// weight to io.weight, memory+swap to memory.swap.max) follow runc and crun so
// that a config.json means the same thing under berth as under them.
// Device rules become devices.allow/devices.deny writes on v1 and an eBPF
// BPF_PROG_TYPE_CGROUP_DEVICE program on v2.
//
// A cgroup path (Manager.Path, Resolve) is a path inside the cgroup
// hierarchy such as "/berth/abc", never a path under /sys/fs/cgroup.
package cgroup

import (
	"os"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Manager manages one container's cgroup. Its methods may be called from
// different processes over the container's life: a Manager holds no state
// beyond the resolved directories, so New(path) in a later process gives an
// equivalent Manager.
type Manager interface {
	// Path returns the cgroup path the manager was made for, e.g. "/berth/abc".
	Path() string
	// Create makes the cgroup (in every v1 hierarchy, or the v2 directory
	// after enabling the needed controllers in the parents'
	// cgroup.subtree_control) and applies r, which may be nil. Creating a
	// cgroup that already exists is not an error; r is applied again.
	Create(r *specs.LinuxResources) error
	// Apply moves the process pid into the cgroup (cgroup.procs of every
	// hierarchy).
	Apply(pid int) error
	// Set updates the resources of an existing cgroup, as "runc update" does.
	// Nil fields are left alone.
	Set(r *specs.LinuxResources) error
	// Freeze stops every process in the cgroup and returns once the kernel
	// reports the cgroup frozen.
	Freeze() error
	// Thaw resumes the processes of a frozen cgroup.
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Pids returns the pids of every process in the cgroup and its
	// descendants.
	Pids() ([]int, error)
	// Signal sends sig to every process in the cgroup and its descendants
	// (kill --all). Processes that exit meanwhile are not an error.
	Signal(sig unix.Signal) error
	// Stats reads the cgroup's usage counters.
	Stats() (*Stats, error)
	// OOMKills returns how many processes the OOM killer killed in the
	// cgroup (memory.events oom_kill on v2, memory.oom_control oom_kill on
	// v1).
	OOMKills() (uint64, error)
	// Destroy removes the cgroup's directories, including sub-cgroups a
	// container made below it. A cgroup that does not exist is not an error;
	// one that still holds processes is (after a short retry on EBUSY).
	Destroy() error
	// DirFD opens the v2 cgroup directory with O_PATH|O_DIRECTORY, for
	// SysProcAttr.UseCgroupFD (clone3 with CLONE_INTO_CGROUP). The caller
	// closes it. On v1 it returns an error wrapping errdefs.ErrNotImplemented.
	DirFD() (*os.File, error)
}

// Unified reports whether the host uses the cgroup v2 unified hierarchy only,
// that is, no cgroup v1 hierarchy with a controller is mounted and cgroup2
// is.
func Unified() bool {
	t, err := hostMounts()
	return err == nil && t.unified()
}

// New returns the manager for the cgroup at path (an absolute cgroup path as
// returned by Resolve) on this host: a v2 manager on a unified host, a v1
// manager otherwise. It does not touch the cgroup; Create makes it.
func New(cgroupPath string) (Manager, error) {
	p, err := cleanPath(cgroupPath)
	if err != nil {
		return nil, err
	}
	t, err := hostMounts()
	if err != nil {
		return nil, err
	}
	if t.unified() {
		return newV2(t, p), nil
	}
	return newV1(t, p)
}

// cleanPath checks that p is an absolute cgroup path and cleans it; ".."
// cannot climb above the root.
func cleanPath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", invalidf("cgroup path %q is not absolute", p)
	}
	return path.Clean(p), nil
}
