package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1 manages a cgroup on a legacy or hybrid host: one directory per
// mounted v1 hierarchy, the name=systemd hierarchy, and on hybrid hosts the
// controller-less cgroup2 tree (as runc's fs driver does, so that the
// container's processes sit at the same path in every tree).
type v1 struct {
	path string
	dirs []v1dir
}

// v1dir is the cgroup's directory in one hierarchy.
type v1dir struct {
	h   *hierarchy
	dir string
}

var _ Manager = (*v1)(nil)

func newV1(t *mountTable, p string) (*v1, error) {
	m := &v1{path: p}
	for i := range t.v1 {
		h := &t.v1[i]
		if len(h.controllers) == 0 && h.name != "name=systemd" {
			continue // some other program's named hierarchy
		}
		m.dirs = append(m.dirs, v1dir{h: h, dir: h.dir(p)})
	}
	if t.v2 != nil {
		m.dirs = append(m.dirs, v1dir{h: t.v2, dir: t.v2.dir(p)})
	}
	if len(m.dirs) == 0 {
		return nil, fmt.Errorf("no cgroup v1 hierarchy mounted: %w", errdefs.ErrUnavailable)
	}
	return m, nil
}

func (m *v1) Path() string { return m.path }

// dir returns the cgroup's directory in the hierarchy of controller c.
func (m *v1) dir(c string) (string, bool) {
	for _, d := range m.dirs {
		if d.h.has(c) {
			return d.dir, true
		}
	}
	return "", false
}

// Create makes the directory in every hierarchy, then applies r. In the
// cpuset hierarchy each new level gets its parent's cpuset.cpus and
// cpuset.mems first: the kernel leaves them empty, and a cgroup with an
// empty cpuset cannot take a process.
func (m *v1) Create(r *specs.LinuxResources) error {
	if err := m.validate(r); err != nil {
		return err
	}
	for _, d := range m.dirs {
		if d.dir == d.h.mountpoint {
			continue
		}
		if d.h.has("cpuset") {
			if err := createCpuset(d.h.mountpoint, d.dir); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", d.dir, err)
		}
	}
	return m.Set(r)
}

// createCpuset creates dir level by level below mount, copying cpuset.cpus
// and cpuset.mems from the parent into every level where they are empty.
func createCpuset(mount, dir string) error {
	rel, err := filepath.Rel(mount, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return invalidf("cgroup %s lies outside %s", dir, mount)
	}
	parent := mount
	for _, elem := range strings.Split(rel, "/") {
		cur := filepath.Join(parent, elem)
		if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", cur, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := readFile(cur, f)
			if err != nil {
				return err
			}
			if v != "" {
				continue
			}
			pv, err := readFile(parent, f)
			if err != nil {
				return err
			}
			if err := writeFile(cur, f, pv); err != nil {
				return err
			}
		}
		parent = cur
	}
	return nil
}

func (m *v1) Apply(pid int) error {
	for _, d := range m.dirs {
		if err := writePid(d.dir, pid); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("cgroup %s (%s): %w", m.path, d.dir, errdefs.ErrNotFound)
			}
			return err
		}
	}
	return nil
}

// freezer returns the cgroup's directory in the freezer hierarchy.
func (m *v1) freezer() (string, error) {
	dir, ok := m.dir("freezer")
	if !ok {
		return "", notImplemented("freeze: the freezer cgroup controller is not mounted")
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
	}
	return dir, nil
}

// Freeze writes FROZEN and waits until freezer.state says FROZEN. While
// tasks fork the state can stay FREEZING; rewriting FROZEN now and then
// lets the freezer catch the new tasks, as runc does.
func (m *v1) Freeze() error {
	dir, err := m.freezer()
	if err != nil {
		return err
	}
	if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
		return err
	}
	n := 0
	ok, err := waitFor(freezeTimeout, func() (bool, error) {
		s, err := readFile(dir, "freezer.state")
		if err != nil {
			return false, err
		}
		if n++; n%20 == 0 && s != "FROZEN" {
			_ = writeFile(dir, "freezer.state", "FROZEN")
		}
		return s == "FROZEN", nil
	})
	if err != nil || ok {
		return err
	}
	_ = writeFile(dir, "freezer.state", "THAWED")
	return fmt.Errorf("freeze cgroup %s: not frozen after %s: %w", m.path, freezeTimeout, errdefs.ErrUnavailable)
}

func (m *v1) Thaw() error {
	dir, err := m.freezer()
	if err != nil {
		return err
	}
	if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
		return err
	}
	ok, err := waitFor(freezeTimeout, func() (bool, error) {
		s, err := readFile(dir, "freezer.state")
		return s == "THAWED", err
	})
	if err != nil || ok {
		return err
	}
	return fmt.Errorf("thaw cgroup %s: still frozen (is a parent frozen?): %w", m.path, errdefs.ErrFailedPrecondition)
}

// Frozen reports FROZEN only; FREEZING (a freeze in progress, or one that
// could not finish) is not frozen.
func (m *v1) Frozen() (bool, error) {
	dir, err := m.freezer()
	if err != nil {
		return false, err
	}
	s, err := readFile(dir, "freezer.state")
	return s == "FROZEN", err
}

// pidsDir picks the hierarchy whose cgroup.procs Pids reads: every
// hierarchy holds the same processes unless someone moved them by hand.
func (m *v1) pidsDir() string {
	for _, c := range []string{"pids", "freezer", "devices", "memory", "cpu"} {
		if d, ok := m.dir(c); ok {
			return d
		}
	}
	return m.dirs[0].dir
}

func (m *v1) Pids() ([]int, error) { return readPids(m.pidsDir()) }

// Signal freezes the cgroup (when the freezer is mounted) around the
// signalling, so that no process forks a child that escapes the signal.
func (m *v1) Signal(sig unix.Signal) error {
	if _, err := os.Stat(m.pidsDir()); err != nil {
		return fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
	}
	if _, ok := m.dir("freezer"); !ok {
		pids, err := m.Pids()
		if err != nil {
			return err
		}
		return signalPids(pids, sig)
	}
	return signalFrozen(m, sig)
}

func (m *v1) OOMKills() (uint64, error) {
	dir, ok := m.dir("memory")
	if !ok {
		return 0, notImplemented("oom kills: the memory cgroup controller is not mounted")
	}
	v, err := readKeyed(dir, "memory.oom_control")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("cgroup %s: %w", m.path, errdefs.ErrNotFound)
		}
		return 0, err
	}
	n, ok := v["oom_kill"]
	if !ok {
		return 0, notImplemented("oom kills: kernel's memory.oom_control has no oom_kill counter (needs 4.13)")
	}
	return n, nil
}

func (m *v1) Destroy() error {
	if m.path == "/" {
		return invalidf("refusing to remove the root cgroup")
	}
	var errs []error
	for _, d := range m.dirs {
		if d.dir == d.h.mountpoint {
			continue
		}
		if err := removeTree(d.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *v1) DirFD() (*os.File, error) {
	return nil, notImplemented("cgroup directory fd for CLONE_INTO_CGROUP needs cgroup v2")
}
