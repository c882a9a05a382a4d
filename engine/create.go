package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	bmount "github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/shim"
	"github.com/berth-dev/berth/spec"
	"github.com/moby/moby/api/types/container"
)

// CreateRequest is what `create` and `run` ask for: Docker's API types, as
// dockerd receives them.
type CreateRequest struct {
	// ID is the container's ID when chosen ahead (PrestartMonitor); empty
	// for a new one.
	ID         string
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
}

// Create records a new container from an image in the store: its name,
// its writable snapshot, its volumes and the files Docker bind-mounts into
// every container. It starts nothing. A missing image is ErrNotFound
// ("No such image: x"), for the caller to pull.
//
// Create is safe against a kill at any moment: the record is written
// before anything it owns exists, so `rm` of a half-made container finds
// and removes every part.
func (e *Engine) Create(ctx context.Context, req CreateRequest) (*Container, error) {
	if req.Config == nil || req.Config.Image == "" {
		return nil, errorf(errdefs.ErrInvalidArgument, "no image given")
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	if err := checkHostConfig(req.HostConfig); err != nil {
		return nil, err
	}
	name := req.Name
	if name != "" {
		var err error
		if name, err = checkName(name); err != nil {
			return nil, err
		}
	}
	id := req.ID
	if id == "" {
		id = newID()
	} else if !validID.MatchString(id) {
		return nil, errorf(errdefs.ErrInvalidArgument, "invalid container ID %q", id)
	} else if _, err := os.Lstat(e.containerDir(id)); err == nil {
		return nil, errorf(errdefs.ErrConflict, "container ID %s is in use", id)
	}
	rec, err := e.FindImage(ctx, req.Config.Image)
	if err != nil {
		return nil, err
	}
	img, err := e.ResolveImage(ctx, rec)
	if err != nil {
		return nil, err
	}
	if len(img.ChainIDs) == 0 {
		return nil, errorf(errdefs.ErrInvalidArgument, "image %s has no layers", req.Config.Image)
	}
	c := &Container{
		ID:         id,
		Created:    time.Now().UTC(),
		Image:      img.ID().String(),
		Config:     req.Config,
		HostConfig: req.HostConfig,
		Driver:     e.driver,
		Platform:   "linux",
	}
	c.Snapshot = c.ID
	c.Path, c.Args = command(img, c.Config)
	if c.Config.Hostname == "" && !hostNetwork(c.HostConfig) {
		c.Config.Hostname = c.ID[:12]
	}
	if c.HostConfig.NetworkMode == "" || c.HostConfig.NetworkMode == "default" {
		c.HostConfig.NetworkMode = "bridge"
	}
	if c.HostConfig.LogConfig.Type == "" {
		c.HostConfig.LogConfig.Type = "json-file"
	}
	// Refuse now what the spec would refuse at start (limits, caps,
	// devices, the working directory), as Docker's daemon does: a
	// container that could never start is not made.
	if req, err := e.specRequest(ctx, c, nil); err != nil {
		return nil, err
	} else if err := spec.Check(req); err != nil {
		return nil, err
	}
	random := name == ""
	if random {
		name = e.randomName()
	}
	c.Name = name

	// Reserve the name and write the record before making anything the
	// record owns, so nothing is ever made that rm cannot find. The
	// container's lock, held throughout, tells a create under way from
	// one that was killed (whose directory and name ps sweeps away).
	l, err := e.lock(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	if err := os.MkdirAll(e.containerDir(c.ID), 0o710); err != nil {
		os.Remove(e.lockPath(c.ID))
		return nil, err
	}
	marker := filepath.Join(e.containerDir(c.ID), creatingFile)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		os.RemoveAll(e.containerDir(c.ID))
		os.Remove(e.lockPath(c.ID))
		return nil, err
	}
	for try := 1; ; try++ {
		err := e.reserveName(ctx, c.Name, c.ID)
		if err == nil {
			break
		}
		if !random || !errdefs.IsConflict(err) || try == 10 {
			os.RemoveAll(e.containerDir(c.ID))
			os.Remove(e.lockPath(c.ID))
			return nil, err
		}
		c.Name = e.randomName() // a concurrent create took it: draw again
	}
	fail := func(err error) (*Container, error) {
		e.removeParts(context.WithoutCancel(ctx), c)
		e.removeAnonymousVolumes(context.WithoutCancel(ctx), c) // made for it alone
		os.Remove(e.lockPath(c.ID))
		return nil, err
	}
	if err := e.saveContainer(c); err != nil {
		return fail(err)
	}
	if err := shim.WriteState(e.containerDir(c.ID), shim.State{Status: "created"}); err != nil {
		return fail(err)
	}
	if _, err := e.snapshots.Prepare(ctx, c.Snapshot, img.ChainIDs[len(img.ChainIDs)-1].String()); err != nil {
		return fail(fmt.Errorf("prepare rootfs: %w", err))
	}
	if err := e.setupMounts(ctx, c, img); err != nil {
		return fail(err)
	}
	if err := e.makeWorkingDir(ctx, c, img); err != nil {
		return fail(err)
	}
	if err := e.writeEtcFiles(c); err != nil {
		return fail(err)
	}
	if err := e.saveContainer(c); err != nil {
		return fail(err)
	}
	if err := os.Remove(marker); err != nil {
		return fail(err)
	}
	e.containerEvent(ctx, c, "create", nil)
	return c, nil
}

// checkHostConfig refuses what Docker's daemon refuses before creating.
func checkHostConfig(hc *container.HostConfig) error {
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		return errorf(errdefs.ErrInvalidArgument, "can't create 'AutoRemove' container with restart policy")
	}
	switch hc.RestartPolicy.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hc.RestartPolicy.MaximumRetryCount != 0 {
			return errorf(errdefs.ErrInvalidArgument, "invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if hc.RestartPolicy.MaximumRetryCount < 0 {
			return errorf(errdefs.ErrInvalidArgument, "invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return errorf(errdefs.ErrInvalidArgument, "invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", hc.RestartPolicy.Name)
	}
	switch mode := string(hc.NetworkMode); {
	case mode == "", mode == "default", mode == "bridge", mode == "none", mode == "host":
	default:
		return errorf(errdefs.ErrNotFound, "network %s not found", mode)
	}
	switch hc.LogConfig.Type {
	case "", "json-file", "none":
	default:
		return errorf(errdefs.ErrInvalidArgument, "failed to create task for container: logger: no log driver named '%s' is registered", hc.LogConfig.Type)
	}
	return nil
}

func hostNetwork(hc *container.HostConfig) bool { return hc.NetworkMode == "host" }

// command is the process a container runs, as inspect's Path and Args:
// the entrypoint (the request's or the image's) and then the command.
func command(img image.Image, cfg *container.Config) (string, []string) {
	entry, cmd := img.ConfigFile.Config.Entrypoint, img.ConfigFile.Config.Cmd
	if cfg.Entrypoint != nil {
		entry, cmd = cfg.Entrypoint, nil
		if len(entry) == 1 && entry[0] == "" {
			entry = nil
		}
	}
	if len(cfg.Cmd) > 0 {
		cmd = cfg.Cmd
	}
	argv := append(append([]string{}, entry...), cmd...)
	if len(argv) == 0 {
		return "", nil
	}
	return argv[0], argv[1:]
}

// writeEtcFiles writes the hostname, hosts and resolv.conf files the
// container gets bind-mounted, as Docker does.
func (e *Engine) writeEtcFiles(c *Container) error {
	dir := e.containerDir(c.ID)
	hostname := c.Config.Hostname
	if hostNetwork(c.HostConfig) {
		hostname, _ = os.Hostname()
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	if hostNetwork(c.HostConfig) {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	}
	for _, h := range c.HostConfig.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			name, ip, _ = strings.Cut(h, "=")
		}
		hosts += ip + "\t" + name + "\n"
	}
	files := map[string]string{
		"hostname":    hostname + "\n",
		"hosts":       hosts,
		"resolv.conf": resolvConf(hostNetwork(c.HostConfig)),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// resolvConf is the host's resolv.conf; without the host's network, its
// loopback nameservers are dropped (they would not answer inside).
func resolvConf(hostNet bool) string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if hostNet {
		return string(b)
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// makeWorkingDir creates the working directory in the container's rootfs
// when no layer has it, as Docker's daemon does at create (owned by root,
// 0755). A path it cannot make there (through a link out of the rootfs,
// say) is left for the runtime to report when the container starts.
func (e *Engine) makeWorkingDir(ctx context.Context, c *Container, img image.Image) error {
	dir := c.Config.WorkingDir
	if dir == "" {
		dir = img.ConfigFile.Config.WorkingDir
	}
	rel := strings.TrimPrefix(path.Clean(dir), "/")
	if !path.IsAbs(dir) || rel == "" {
		return nil
	}
	mnts, err := e.snapshots.Mounts(ctx, c.Snapshot)
	if err != nil {
		return fmt.Errorf("rootfs of container %s: %w", c.Name, err)
	}
	if ls, ok := layeredUsers(mnts).(layers); ok {
		for _, d := range ls {
			if fi, err := os.Lstat(filepath.Join(d, rel)); err == nil {
				if fi.Mode()&os.ModeCharDevice != 0 {
					break // a whiteout: deleted in a layer above
				}
				return nil // a layer has it
			}
		}
	}
	return bmount.WithTempMount(ctx, mnts, func(root string) error {
		r, err := os.OpenRoot(root)
		if err != nil {
			return err
		}
		defer r.Close()
		r.MkdirAll(rel, 0o755)
		return nil
	})
}
