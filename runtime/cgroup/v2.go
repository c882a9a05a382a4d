package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// freezeTimeout bounds how long Freeze waits for the kernel to report a
// cgroup frozen.
const freezeTimeout = 10 * time.Second

// v2 manages a cgroup in the unified hierarchy: one directory.
type v2 struct {
	path  string
	mount *hierarchy
	dir   string
}

var _ Manager = (*v2)(nil)

func newV2(t *mountTable, p string) *v2 {
	return &v2{path: p, mount: t.v2, dir: t.v2.dir(p)}
}

func (m *v2) Path() string { return m.path }

// Create makes the directory level by level below the mountpoint, enabling
// in each parent's cgroup.subtree_control every controller the parent has,
// so that the new cgroup gets them all (as runc does), then applies r.
func (m *v2) Create(r *specs.LinuxResources) error {
	if err := validateV2(r); err != nil {
		return err
	}
	rel, err := filepath.Rel(m.mount.mountpoint, m.dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return invalidf("cgroup %s lies outside %s", m.dir, m.mount.mountpoint)
	}
	cur := m.mount.mountpoint
	if rel != "." {
		for _, elem := range strings.Split(rel, "/") {
			enableControllers(cur)
			cur = filepath.Join(cur, elem)
			if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create cgroup %s: %w", cur, err)
			}
		}
	}
	if err := m.checkControllers(r); err != nil {
		return err
	}
	return m.Set(r)
}

// enableControllers enables in dir's cgroup.subtree_control the
// controllers dir has and does not yet pass on. Errors are ignored here: a
// controller that cannot be enabled (a threaded subtree, a cgroup with
// processes) is reported by checkControllers when it is needed.
func enableControllers(dir string) {
	have, err := readFile(dir, "cgroup.controllers")
	if err != nil || have == "" {
		return
	}
	on, _ := readFile(dir, "cgroup.subtree_control")
	enabled := strings.Fields(on)
	var add []string
	for _, c := range strings.Fields(have) {
		if !slices.Contains(enabled, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return
	}
	if writeFile(dir, "cgroup.subtree_control", strings.Join(add, " ")) == nil {
		return
	}
	for _, c := range add {
		_ = writeFile(dir, "cgroup.subtree_control", c)
	}
}

// checkControllers fails when r needs a controller the cgroup lacks.
func (m *v2) checkControllers(r *specs.LinuxResources) error {
	need := neededV2(r)
	if len(need) == 0 {
		return nil
	}
	s, err := readFile(m.dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	have := strings.Fields(s)
	for _, c := range need {
		if !slices.Contains(have, c) {
			return fmt.Errorf("cgroup %s: controller %q is not available (not enabled in the parent's cgroup.subtree_control): %w",
				m.path, c, errdefs.ErrFailedPrecondition)
		}
	}
	return nil
}

// neededV2 lists the controllers whose files r writes.
func neededV2(r *specs.LinuxResources) []string {
	if r == nil {
		return nil
	}
	var need []string
	add := func(c string) {
		if !slices.Contains(need, c) {
			need = append(need, c)
		}
	}
	if mem := r.Memory; mem != nil && (mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil) {
		add("memory")
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil || c.Quota != nil || c.Period != nil || c.Burst != nil || c.Idle != nil {
			add("cpu")
		}
		if c.Cpus != "" || c.Mems != "" {
			add("cpuset")
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		add("pids")
	}
	if b := r.BlockIO; b != nil && (b.Weight != nil || len(b.WeightDevice) > 0 || len(b.ThrottleReadBpsDevice) > 0 ||
		len(b.ThrottleWriteBpsDevice) > 0 || len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0) {
		add("io")
	}
	if len(r.Rdma) > 0 {
		add("rdma")
	}
	for k := range r.Unified {
		if c, _, ok := strings.Cut(k, "."); ok && c != "cgroup" {
			add(c)
		}
	}
	return need
}

func (m *v2) Apply(pid int) error {
	if err := writePid(m.dir, pid); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
		}
		return err
	}
	return nil
}

func (m *v2) Freeze() error {
	if !exists(m.dir, "cgroup.freeze") {
		return m.missing("cgroup.freeze")
	}
	if err := writeFile(m.dir, "cgroup.freeze", "1"); err != nil {
		return err
	}
	ok, err := waitFor(freezeTimeout, m.Frozen)
	if err != nil || ok {
		return err
	}
	_ = writeFile(m.dir, "cgroup.freeze", "0")
	return fmt.Errorf("freeze cgroup %s: not frozen after %s: %w", m.path, freezeTimeout, errdefs.ErrUnavailable)
}

func (m *v2) Thaw() error {
	if !exists(m.dir, "cgroup.freeze") {
		return m.missing("cgroup.freeze")
	}
	if err := writeFile(m.dir, "cgroup.freeze", "0"); err != nil {
		return err
	}
	ok, err := waitFor(freezeTimeout, func() (bool, error) {
		f, err := m.Frozen()
		return !f, err
	})
	if err != nil || ok {
		return err
	}
	return fmt.Errorf("thaw cgroup %s: still frozen (is a parent frozen?): %w", m.path, errdefs.ErrFailedPrecondition)
}

// Frozen reads the effective state from cgroup.events, which also reports
// a cgroup frozen because an ancestor is.
func (m *v2) Frozen() (bool, error) {
	ev, err := readKeyed(m.dir, "cgroup.events")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, m.missing("cgroup.events")
		}
		return false, err
	}
	return ev["frozen"] == 1, nil
}

// missing explains a cgroup file that is not there: either the cgroup is
// gone, or the kernel is too old to have the file.
func (m *v2) missing(file string) error {
	if _, err := os.Stat(m.dir); err != nil {
		return fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
	}
	return notImplemented("cgroup %s: kernel has no %s", m.path, file)
}

func (m *v2) Pids() ([]int, error) { return readPids(m.dir) }

// Signal sends sig to every process. SIGKILL uses cgroup.kill where the
// kernel has it (5.14+), which cannot miss a process forked meanwhile;
// otherwise the cgroup is frozen around the signalling so that nothing
// forks in between, as runc does.
func (m *v2) Signal(sig unix.Signal) error {
	if _, err := os.Stat(m.dir); err != nil {
		return fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
	}
	if sig == unix.SIGKILL && exists(m.dir, "cgroup.kill") {
		return writeFile(m.dir, "cgroup.kill", "1")
	}
	return signalFrozen(m, sig)
}

// signalFrozen freezes m (if it can and it is not frozen already), signals
// every process and thaws it again. Freezing is best effort.
func signalFrozen(m Manager, sig unix.Signal) error {
	// An empty cgroup (the usual case at delete) needs no freeze.
	if pids, err := m.Pids(); err == nil && len(pids) == 0 {
		return nil
	}
	was, ferr := m.Frozen()
	froze := ferr == nil && !was && m.Freeze() == nil
	pids, err := m.Pids()
	if err == nil {
		err = signalPids(pids, sig)
	}
	if froze {
		if terr := m.Thaw(); terr != nil {
			err = errors.Join(err, terr)
		}
	}
	return err
}

func (m *v2) OOMKills() (uint64, error) {
	ev, err := readKeyed(m.dir, "memory.events")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, m.missing("memory.events")
		}
		return 0, err
	}
	return ev["oom_kill"], nil
}

func (m *v2) Destroy() error {
	if m.dir == m.mount.mountpoint {
		return invalidf("refusing to remove the root cgroup")
	}
	return removeTree(m.dir)
}

func (m *v2) DirFD() (*os.File, error) {
	fd, err := unix.Open(m.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil, fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("open %s: %w", m.dir, err)
	}
	return os.NewFile(uintptr(fd), m.dir), nil
}
