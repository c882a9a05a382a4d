package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/runtime/cgroup"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CreateOpts are the options of `create` and `run`.
type CreateOpts struct {
	ID          string
	Bundle      string
	PidFile     string
	Console     *os.File // connected console socket; init sends the pty master on it
	NoPivot     bool
	PreserveFDs int // fds 3 .. 3+PreserveFDs-1 pass to the container
	Stdio       [3]*os.File
}

// initConfig is what the parent sends init once it is in its namespaces.
type initConfig struct {
	Mode        string         `json:"mode"` // "create" or "exec"
	Spec        *specs.Spec    `json:"spec"`
	Process     *specs.Process `json:"process"`
	Rootfs      string         `json:"rootfs"`
	State       specs.State    `json:"state"` // for the hooks init runs
	NoPivot     bool           `json:"noPivot,omitempty"`
	PreserveFDs int            `json:"preserveFds,omitempty"`
	ConsoleFD   int            `json:"consoleFd,omitempty"`
	FifoFD      int            `json:"fifoFd,omitempty"`
	Cgroupns    bool           `json:"cgroupns,omitempty"`
	CgroupPath  string         `json:"cgroupPath,omitempty"`
	Placement   string         `json:"placement,omitempty"` // see started.placement
}

// Create builds the container from o.Bundle and leaves its init waiting
// on exec.fifo for Start. On failure nothing is left behind: no state
// directory, cgroup or process.
func (r *Runtime) Create(ctx context.Context, o CreateOpts) (err error) {
	if err := checkID(o.ID); err != nil {
		return err
	}
	// On v1 the move of init into its cgroups would wait out an RCU grace
	// period: start it now, while the bundle is read and init prepared.
	defer cgroup.Warm()()
	spec, bundle, rootfs, err := loadBundle(o.Bundle)
	if err != nil {
		return err
	}
	if spec.Process.Terminal && o.Console == nil {
		return invalid("cannot allocate a tty without a console socket (--console-socket)")
	}
	dir := r.dir(o.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("container with id exists: %s: %w", o.ID, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("create state directory: %w", err)
	}
	st := &State{
		ID: o.ID, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(),
		Annotations: spec.Annotations, Config: spec, Owner: owner(),
	}
	var cg cgroup.Manager
	var s *started
	defer func() {
		if err != nil {
			if s != nil {
				killWait(s.pid, 0)
			}
			if cg != nil {
				cg.Destroy()
			}
			os.RemoveAll(dir)
		}
	}()

	fifoPath := filepath.Join(dir, "exec.fifo")
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return fmt.Errorf("create exec fifo: %w", err)
	}
	os.Chmod(fifoPath, 0o622)
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()

	if st.CgroupPath, err = cgroup.Resolve(spec.Linux.CgroupsPath, o.ID, r.SystemdCgroup); err != nil {
		return err
	}
	if cg, err = cgroup.New(st.CgroupPath); err != nil {
		return err
	}
	createCgroup := func() error {
		if err := cg.Create(withDeviceRules(spec)); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		return nil
	}
	unified := cgroup.Unified()
	if unified { // first, to clone init into it
		if err := createCgroup(); err != nil {
			return err
		}
	}

	l := &launch{stdio: o.Stdio, uidMaps: spec.Linux.UIDMappings, gidMaps: spec.Linux.GIDMappings}
	for i := 0; i < o.PreserveFDs; i++ {
		l.files = append(l.files, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(i)))
	}
	cfg := initConfig{Mode: "create", Spec: spec, Process: spec.Process, Rootfs: rootfs, NoPivot: o.NoPivot, PreserveFDs: o.PreserveFDs, CgroupPath: st.CgroupPath}
	if o.Console != nil {
		l.files = append(l.files, o.Console)
		cfg.ConsoleFD = 2 + len(l.files)
	}
	l.files = append(l.files, fifo)
	cfg.FifoFD = 2 + len(l.files)
	for _, ns := range spec.Linux.Namespaces {
		k := nsKinds[ns.Type]
		if ns.Path != "" {
			l.joins = append(l.joins, string(ns.Type)+":"+ns.Path)
		} else {
			l.flags |= k.flag
		}
		if ns.Type == specs.PIDNamespace || ns.Type == specs.TimeNamespace {
			l.fork = true
		}
		if ns.Type == specs.CgroupNamespace && ns.Path == "" {
			cfg.Cgroupns = true
		}
	}
	l.timens = timensOffsets(spec.Linux.TimeOffsets)
	l.cgroup = cg
	if fd, err := cg.DirFD(); err == nil {
		l.cgroupFD = fd
		defer fd.Close()
	}
	if !unified {
		// The many v1 directories are made while init's constructor
		// sets up its namespaces; init is moved in after.
		l.prepare = createCgroup
	}

	if s, err = l.start(); err != nil {
		return err
	}
	defer s.conn.close()
	// Init waits for its configuration, so it is alive to be named by
	// pid and start time. Then it decodes and mounts while we record.
	st.Pid = s.pid
	if st.StartTime, err = ProcessStartTime(s.pid); err != nil {
		return fmt.Errorf("container init: %w", err)
	}
	cfg.State = r.ociState(st, Creating)
	cfg.Placement = s.placement(unified)
	if err := s.conn.send(cfg); err != nil {
		return err
	}
	prlimitFromParent(s.pid, spec.Process.Rlimits)
	if p := spec.Process.OOMScoreAdj; p != nil {
		if err := os.WriteFile("/proc/"+strconv.Itoa(s.pid)+"/oom_score_adj", []byte(strconv.Itoa(*p)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj: %w", err)
		}
	}
	if err := r.save(st); err != nil {
		return err
	}
	if err := r.drive(ctx, s, cfg, st); err != nil {
		return err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, s.pid); err != nil {
			return err
		}
	}
	return nil
}

// drive serves the requests of an init that has its configuration until
// it reports ready or fails.
func (r *Runtime) drive(ctx context.Context, s *started, cfg initConfig, st *State) error {
	c := s.conn
	for {
		var m message
		fds, err := c.recv(&m)
		if err != nil {
			return fmt.Errorf("container init: %w", err)
		}
		var reply error
		switch m.Type {
		case "ready":
			if cfg.Mode == "exec" {
				// Wait for the close at execve (or exit), so that
				// the pid we report runs the program, not init.
				c.recv(&m)
			}
			return nil
		case "error":
			return errors.New(m.Msg)
		case "hooks":
			h := cfg.Spec.Hooks
			if h != nil {
				reply = runHooks(ctx, "prestart", h.Prestart, r.ociState(st, Creating))
				if reply == nil {
					reply = runHooks(ctx, "createRuntime", h.CreateRuntime, r.ociState(st, Creating))
				}
			}
		case "seccomp":
			reply = r.forwardListener(cfg, st, fds)
		case "cgroup":
			reply = s.waitPlaced()
		default:
			reply = fmt.Errorf("unexpected message %q", m.Type)
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		ans := message{Type: "ok"}
		if reply != nil {
			ans = message{Type: "error", Msg: reply.Error()}
		}
		if err := c.send(ans); err != nil {
			return err
		}
		if reply != nil {
			return reply
		}
	}
}

// withDeviceRules returns the spec's resources with allow rules for the
// default devices and linux.devices appended, as runc does: the engine
// lists what it adds, the runtime what it always creates.
func withDeviceRules(s *specs.Spec) *specs.LinuxResources {
	var res specs.LinuxResources
	if s.Linux.Resources != nil {
		res = *s.Linux.Resources
	}
	rules := append([]specs.LinuxDeviceCgroup{}, res.Devices...)
	i64 := func(v int64) *int64 { return &v }
	for _, d := range defaultDevices {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(d.Major), Minor: i64(d.Minor), Access: "rwm"})
	}
	rules = append(rules,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"}, // /dev/ptmx
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(136), Minor: nil, Access: "rwm"},  // /dev/pts/*
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(5), Minor: i64(1), Access: "rwm"}, // /dev/console
	)
	for _, d := range s.Linux.Devices {
		t := d.Type
		if t == "u" {
			t = "c"
		}
		if t == "p" {
			continue // a fifo is no device: the device cgroup has no say
		}
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: i64(d.Major), Minor: i64(d.Minor), Access: "rwm"})
	}
	res.Devices = rules
	return &res
}

// prlimitFromParent raises init's hard limits to what the spec asks,
// from outside its user namespace, where a hard limit can still be raised
// (CAP_SYS_RESOURCE counts only in the host's). It lowers nothing: init
// applies the limits themselves just before execve (see setRlimits).
func prlimitFromParent(pid int, rls []specs.POSIXRlimit) {
	for _, rl := range rls {
		res, ok := rlimits[rl.Type]
		var cur unix.Rlimit
		if !ok || unix.Prlimit(pid, res, nil, &cur) != nil || rl.Hard <= cur.Max {
			continue
		}
		unix.Prlimit(pid, res, &unix.Rlimit{Cur: cur.Cur, Max: rl.Hard}, nil)
	}
}

func timensOffsets(offs map[string]specs.LinuxTimeOffset) string {
	var b strings.Builder
	for clock, o := range offs {
		fmt.Fprintf(&b, "%s %d %d\n", clock, o.Secs, o.Nanosecs)
	}
	return b.String()
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return writeFileAtomic(abs, []byte(strconv.Itoa(pid)))
}

func owner() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Geteuid())
}
