package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/logs"
	bmount "github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/runtime/cgroup"
	"github.com/berth-dev/berth/shim"
	"github.com/berth-dev/berth/spec"
)

// StartOptions are the options of Start.
type StartOptions struct {
	// Attach, when set, connects these streams before the process starts,
	// so that no output is missed (`run` without -d, `start -a`).
	Attach *shim.AttachOptions
	// RemoveAfter says the caller removes an --rm container itself
	// (RemoveWhenDone) once it has exited; the shim's exit command then
	// does nothing unless the caller is gone by then.
	RemoveAfter bool
	// Monitor, when set, is the monitor to launch the container on,
	// started ahead by PrestartMonitor; Start sends it away if unused.
	Monitor *shim.Monitor
}

// PrestartMonitor chooses the ID of a container still to be created
// (CreateRequest.ID) and starts its monitor ahead of Start (StartOptions
// .Monitor), for a caller that will create and start it at once (run):
// the monitor's process start then overlaps the creation. The monitor is
// nil when it cannot start; Start launches one itself then.
func (e *Engine) PrestartMonitor() (id string, m *shim.Monitor) {
	id = newID()
	m, err := shim.Prestart(e.exe, e.bundleDir(id))
	if err != nil {
		return id, nil
	}
	return id, m
}

// Started is a container Start has started.
type Started struct {
	ID string
	// Attached delivers the result of the attach (the process's exit or
	// the attach's error) when StartOptions.Attach was set.
	Attached <-chan AttachResult
}

// AttachResult is how an attach ended.
type AttachResult struct {
	Exit shim.Exit
	Err  error
}

// Start runs a created or stopped container: generate its OCI spec from
// its record and image, write the bundle, and hand it to a new shim,
// which creates and starts it and then watches it. ctx bounds the start;
// an attach lives on in attachCtx until the process exits or attachCtx
// ends (a detach).
func (e *Engine) Start(ctx, attachCtx context.Context, ref string, o StartOptions) (*Started, error) {
	// The monitor's runtime moves init into its v1 cgroups, which waits
	// for an RCU grace period unless one just passed: let it pass while
	// the container is looked up and its monitor starts.
	defer cgroup.Warm()()
	defer o.Monitor.Close()
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return nil, err
	}
	l, err := e.lock(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	id := c.ID
	if c, err = e.loadContainer(id); err != nil {
		os.Remove(e.lockPath(id)) // removed while we waited
		return nil, err
	}
	st, err := e.state(c)
	if err != nil {
		return nil, err
	}
	switch st.Status {
	case "running", "restarting":
		return &Started{ID: c.ID}, nil
	case "paused":
		return nil, errorf(errdefs.ErrFailedPrecondition, "cannot start a paused container, try unpause instead")
	case "removing", "dead":
		return nil, errorf(errdefs.ErrFailedPrecondition, "container is marked for removal and cannot be started")
	}
	// A start killed after its shim created the process leaves the shim
	// holding it, created: that is the process to start.
	reuse := st.Status == "created" && st.ShimAlive()
	if !reuse {
		// An exited container's shim may still be finishing (answering
		// its clients, deleting, unmounting): a new one must not start
		// under it.
		if err := e.waitShimGone(ctx, c.ID); err != nil {
			return nil, err
		}
		if st, err = e.state(c); err != nil {
			return nil, err
		}
		e.cleanupStale(ctx, c)
		if err := e.writeBundle(ctx, c); err != nil {
			e.cleanupStale(ctx, c)
			return nil, err
		}
		// The shim holds the container's lock until its launch is over,
		// so that a start killed meanwhile leaves the next one a shim
		// that either runs (and holds the process) or is gone.
		if o.RemoveAfter && c.HostConfig.AutoRemove {
			if err := shim.ClaimExit(e.bundleDir(c.ID)); err != nil {
				e.log.WarnContext(ctx, "claim the exit", "err", err)
			}
		}
		var err error
		if o.Monitor != nil && o.Monitor.Bundle() == e.bundleDir(c.ID) {
			err = o.Monitor.Launch(ctx, l.f)
		} else {
			err = shim.Launch(ctx, e.exe, e.bundleDir(c.ID), l.f)
		}
		if err != nil {
			e.recordStartError(c, st, err)
			e.cleanupStale(ctx, c)
			return nil, startError(err)
		}
	}
	client, err := shim.Dial(ctx, e.shimSocket(c.ID))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	started := &Started{ID: c.ID}
	if o.Attach != nil {
		ac, err := shim.Dial(ctx, e.shimSocket(c.ID))
		if err != nil {
			return nil, err
		}
		ready := make(chan struct{})
		opts := *o.Attach
		var once sync.Once
		opts.Attached = func() { once.Do(func() { close(ready) }) }
		ch := make(chan AttachResult, 1)
		go func() {
			defer ac.Close()
			exit, err := ac.Attach(attachCtx, opts)
			ch <- AttachResult{exit, err}
		}()
		select {
		case <-ready:
		case r := <-ch:
			ch <- r
		}
		started.Attached = ch
		e.containerEvent(ctx, c, "attach", nil)
	}
	if _, err := client.Start(ctx); err != nil {
		if reuse && errdefs.IsConflict(err) {
			return started, nil // the killed start got there after all
		}
		return nil, startError(err)
	}
	e.containerEvent(ctx, c, "start", nil)
	return started, nil
}

// startError classifies why a container's process could not start, for
// the exit codes Docker gives: 127 when the command is not found, 126
// when it cannot be run.
func startError(err error) error {
	return fmt.Errorf("failed to create task for container: failed to create shim task: OCI runtime create failed: %w", err)
}

// recordStartError leaves the error in the container's state, as Docker's
// State.Error, with exit code 127 or 126 (or 128) as Docker records it.
func (e *Engine) recordStartError(c *Container, st shim.State, err error) {
	st.Status, st.Error, st.Pid = "created", err.Error(), 0
	if st.StartedAt.IsZero() {
		st.Status = "created"
	} else {
		st.Status = "exited"
	}
	st.ExitCode = ExitCodeOf(err)
	shim.WriteState(e.containerDir(c.ID), st)
}

// ExitCodeOf is the exit status Docker's CLI gives for a failure to start
// a container: 127 (command not found), 126 (cannot invoke) or 125.
func ExitCodeOf(err error) int {
	switch {
	case errors.Is(err, oci.ErrExecNotFound):
		return 127
	case errors.Is(err, oci.ErrExecPermission):
		return 126
	}
	return 125
}

// writeBundle writes the container's OCI bundle and the shim's config.
func (e *Engine) writeBundle(ctx context.Context, c *Container) error {
	bundle := e.bundleDir(c.ID)
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o700); err != nil {
		return err
	}
	rec, err := e.FindImage(ctx, c.Image)
	if err != nil {
		return fmt.Errorf("image of container %s: %w", c.Name, err)
	}
	img, err := e.ResolveImage(ctx, rec)
	if err != nil {
		return err
	}
	rootfs, err := e.snapshots.Mounts(ctx, c.Snapshot)
	if err != nil {
		return fmt.Errorf("rootfs of container %s: %w", c.Name, err)
	}
	req, err := e.specRequest(ctx, c, rootfs)
	if err != nil {
		return err
	}
	s, err := spec.Generate(img.ConfigFile.Config, req)
	if err != nil {
		return err
	}
	s.Process.ConsoleSize = consoleBox(s.Process.Terminal, c.HostConfig.ConsoleSize)
	if req.Init {
		if err := e.applyInit(s); err != nil { // init.go
			return err
		}
	}
	if err := writeRunJSON(filepath.Join(bundle, "config.json"), s); err != nil {
		return err
	}
	cfg, err := e.shimConfig(c, rootfs)
	if err != nil {
		return err
	}
	return writeRunJSON(filepath.Join(bundle, "shim.json"), cfg)
}

// shimConfig says how the shim watches the container.
func (e *Engine) shimConfig(c *Container, rootfs []bmount.Mount) (*shim.Config, error) {
	hc := c.HostConfig
	cfg := &shim.Config{
		ID:          c.ID,
		Bundle:      e.bundleDir(c.ID),
		Rootfs:      rootfs,
		Runtime:     hc.Runtime,
		RuntimeRoot: e.runtimeRootFor(hc.Runtime),
		StateDir:    e.containerDir(c.ID),
		SocketPath:  e.shimSocket(c.ID),
		Tty:         c.Config.Tty,
		OpenStdin:   c.Config.OpenStdin,
		StdinOnce:   c.Config.StdinOnce,
		Restart:     shim.RestartPolicy{Name: string(hc.RestartPolicy.Name), MaxRetries: hc.RestartPolicy.MaximumRetryCount},
		StopSignal:  c.Config.StopSignal,
		Events:      e.EventsPath(),
		EventAttrs:  containerAttrs(c, nil),
	}
	if cfg.Runtime == "runc" || cfg.Runtime == "berth" {
		cfg.Runtime = "" // names Docker knows: the default runtime
	}
	if c.Config.StopTimeout != nil {
		cfg.StopTimeout = *c.Config.StopTimeout
	}
	if hc.LogConfig.Type != "none" {
		opts, err := logs.ParseOptions(hc.LogConfig.Config)
		if err != nil {
			return nil, err
		}
		cfg.LogPath, cfg.LogOptions = e.logPath(c.ID), opts
	}
	if h := c.Config.Healthcheck; h != nil && len(h.Test) > 0 && h.Test[0] != "NONE" {
		cfg.Health = &shim.Healthcheck{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	if hc.AutoRemove {
		cfg.ExitCommand = []string{e.exe, "--root", e.root, "--runroot", e.runRoot, "--storage-driver", e.driver, "rm", "--volumes", "--force", c.ID}
	}
	return cfg, nil
}

// runtimeRootFor is the state root of an OCI runtime: berth's own, or
// one per other runtime binary.
func (e *Engine) runtimeRootFor(runtime string) string {
	if runtime == "" || runtime == "runc" || runtime == "berth" {
		return e.runtimeRoot()
	}
	return filepath.Join(e.runRoot, "runtime-"+strings.ReplaceAll(strings.Trim(runtime, "/"), "/", "_"))
}

// specRequest turns the record into package spec's request.
func (e *Engine) specRequest(ctx context.Context, c *Container, rootfs []bmount.Mount) (spec.Request, error) {
	cfg, hc := c.Config, c.HostConfig
	req := spec.Request{
		Rootfs:            filepath.Join(e.bundleDir(c.ID), "rootfs"),
		CgroupsPath:       "/berth/" + c.ID,
		Entrypoint:        cfg.Entrypoint,
		Cmd:               cfg.Cmd,
		Env:               cfg.Env,
		User:              cfg.User,
		Users:             layeredUsers(rootfs),
		GroupAdd:          hc.GroupAdd,
		WorkingDir:        cfg.WorkingDir,
		Hostname:          cfg.Hostname,
		Domainname:        cfg.Domainname,
		Tty:               cfg.Tty,
		OpenStdin:         cfg.OpenStdin,
		ReadOnly:          hc.ReadonlyRootfs,
		Privileged:        hc.Privileged,
		CapAdd:            hc.CapAdd,
		CapDrop:           hc.CapDrop,
		SecurityOpt:       hc.SecurityOpt,
		Memory:            hc.Memory,
		MemorySwap:        hc.MemorySwap,
		CPUs:              float64(hc.NanoCPUs) / 1e9,
		CPUPeriod:         hc.CPUPeriod,
		CPUQuota:          hc.CPUQuota,
		MemoryReservation: hc.MemoryReservation,
		CPUShares:         hc.CPUShares,
		CpusetCpus:        hc.CpusetCpus,
		Sysctls:           hc.Sysctls,
		ShmSize:           hc.ShmSize,
		OomScoreAdj:       hc.OomScoreAdj,
		Tmpfs:             hc.Tmpfs,
		StopSignal:        cfg.StopSignal,
		Init:              hc.Init != nil && *hc.Init,
		Labels:            cfg.Labels,
	}
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		req.Entrypoint = []string{}
	}
	if hostNetwork(hc) {
		req.Network, req.Hostname = "host", ""
	}
	if hc.PidsLimit != nil {
		req.PidsLimit = *hc.PidsLimit
	}
	for _, u := range hc.Ulimits {
		req.Ulimits = append(req.Ulimits, spec.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, d := range hc.Devices {
		req.Devices = append(req.Devices, spec.Device{Host: d.PathOnHost, Container: d.PathInContainer, Access: d.CgroupPermissions})
	}
	m, err := e.specMounts(ctx, c)
	if err != nil {
		return req, err
	}
	req.Mounts = m
	return req, nil
}

// layeredUsers reads /etc/passwd and /etc/group of an unmounted rootfs:
// from the topmost directory of its mounts that has them.
func layeredUsers(mounts []bmount.Mount) spec.Users {
	var dirs []string
	for _, m := range mounts {
		if m.Type == "bind" {
			dirs = append(dirs, m.Source)
			continue
		}
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				dirs = append([]string{v}, dirs...)
			}
		}
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				dirs = append(dirs, strings.Split(v, ":")...)
			}
		}
	}
	return layers(dirs)
}

type layers []string

func (l layers) open(name string) (io.ReadCloser, error) {
	for _, d := range l {
		fi, err := os.Lstat(filepath.Join(d, name))
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeCharDevice != 0 {
			break // an overlay whiteout: deleted above
		}
		return os.OpenInRoot(d, name)
	}
	return nil, fmt.Errorf("open %s: %w", name, os.ErrNotExist)
}

func (l layers) Passwd() (io.ReadCloser, error) { return l.open("etc/passwd") }
func (l layers) Group() (io.ReadCloser, error)  { return l.open("etc/group") }

// cleanupStale removes what a shim that died without cleaning up left:
// the runtime's container, the rootfs mount, the socket.
func (e *Engine) cleanupStale(ctx context.Context, c *Container) {
	rt, err := e.ociRuntime(c.HostConfig.Runtime)
	if err == nil {
		if _, err := rt.State(ctx, c.ID); err == nil {
			rt.Delete(ctx, c.ID, true)
		}
	}
	rootfs := filepath.Join(e.bundleDir(c.ID), "rootfs")
	for bmount.Unmount(rootfs, 0) == nil {
	}
	os.Remove(e.shimSocket(c.ID))
	if vols, err := e.volumes(); err == nil {
		for _, mp := range c.Mounts {
			if mp.Type == "volume" {
				vols.Unmount(ctx, mp.Name, c.ID)
			}
		}
	}
}

// state reads the container's state. When its shim died without
// recording the end (killed, or gone with the machine) the container is
// settled first (settleDeadShim): Docker then reports it exited.
func (e *Engine) state(c *Container) (shim.State, error) {
	st, err := shim.ReadState(e.containerDir(c.ID))
	if errdefs.IsNotFound(err) {
		return shim.State{Status: "created"}, nil
	}
	if err != nil {
		return st, err
	}
	if _, err := os.Lstat(filepath.Join(e.containerDir(c.ID), removingFile)); err == nil {
		st.Status = "removing"
		return st, nil
	}
	switch st.Status {
	case "running", "paused", "restarting":
		if !st.ShimAlive() {
			return e.settleDeadShim(c, st)
		}
	}
	return st, nil
}
