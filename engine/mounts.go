package engine

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	bmount "github.com/berth-dev/berth/mount"
	"github.com/berth-dev/berth/volume"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setupMounts resolves the container's binds, --mount's, --volumes-from
// and the anonymous volumes (-v /path and the image's VOLUMEs) into
// c.Mounts, creating the volumes that do not exist yet and filling new
// ones from the image's content at their path, as Docker does.
func (e *Engine) setupMounts(ctx context.Context, c *Container, img image.Image) error {
	var mps []container.MountPoint
	taken := map[string]bool{}
	add := func(mp container.MountPoint) error {
		if !path.IsAbs(mp.Destination) {
			return errorf(errdefs.ErrInvalidArgument, "invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", mp.Type, mp.Destination)
		}
		mp.Destination = path.Clean(mp.Destination)
		if taken[mp.Destination] {
			return errorf(errdefs.ErrInvalidArgument, "Duplicate mount point: %s", mp.Destination)
		}
		taken[mp.Destination] = true
		mps = append(mps, mp)
		return nil
	}
	for _, b := range c.HostConfig.Binds {
		mp, err := parseBind(b)
		if err != nil {
			return err
		}
		if err := add(mp); err != nil {
			return err
		}
	}
	for _, m := range c.HostConfig.Mounts {
		mp, err := fromMount(m)
		if err != nil {
			return err
		}
		if err := add(mp); err != nil {
			return err
		}
	}
	for _, from := range c.HostConfig.VolumesFrom {
		ref, mode, _ := strings.Cut(from, ":")
		other, err := e.Lookup(ctx, ref)
		if err != nil {
			return err
		}
		for _, mp := range other.Mounts {
			if mp.Type == mount.TypeTmpfs || taken[mp.Destination] {
				continue
			}
			switch mode {
			case "ro":
				mp.RW = false
			case "rw":
				mp.RW = true
			}
			if err := add(mp); err != nil {
				return err
			}
		}
	}
	anon := map[string]struct{}{}
	for p := range img.ConfigFile.Config.Volumes {
		anon[p] = struct{}{}
	}
	for p := range c.Config.Volumes {
		anon[p] = struct{}{}
	}
	for _, p := range slices.Sorted(maps.Keys(anon)) {
		if taken[path.Clean(p)] || tmpfsAt(c.HostConfig.Tmpfs, p) {
			continue // a bind, volume or tmpfs the user put there wins
		}
		if err := add(container.MountPoint{Type: mount.TypeVolume, Destination: p, Driver: "local", RW: true}); err != nil {
			return err
		}
	}
	if len(mps) == 0 {
		return nil
	}
	vols, err := e.volumes()
	if err != nil {
		return err
	}
	// The record's mounts fill in as the volumes are made, so that a
	// create that fails meanwhile finds the anonymous ones to remove.
	c.Mounts = mps
	var fill []container.MountPoint
	for i := range mps {
		mp := &mps[i]
		if mp.Type != mount.TypeVolume {
			continue
		}
		anonymous := mp.Name == ""
		v, err := vols.Get(ctx, mp.Name)
		if anonymous || errdefs.IsNotFound(err) {
			v, err = vols.Create(ctx, mp.Name, volume.CreateOptions{Driver: "local"})
		}
		if err != nil {
			return err
		}
		mp.Name, mp.Source, mp.Driver = v.Name, v.Mountpoint, v.Driver
		if mp.Mode != "nocopy" {
			fill = append(fill, *mp)
		}
	}
	return e.copyUp(ctx, c, fill)
}

// copyUp fills each empty volume in mps from the image's content at its
// path, seen through the container's snapshot.
func (e *Engine) copyUp(ctx context.Context, c *Container, mps []container.MountPoint) error {
	if len(mps) == 0 {
		return nil
	}
	vols, err := e.volumes()
	if err != nil {
		return err
	}
	mounts, err := e.snapshots.Mounts(ctx, c.Snapshot)
	if err != nil {
		return err
	}
	return bmount.WithTempMount(ctx, mounts, func(root string) error {
		for _, mp := range mps {
			dst, err := vols.Mount(ctx, mp.Name, "copyup-"+c.ID)
			if err != nil {
				return err
			}
			err = volume.CopyUpInRoot(ctx, root, mp.Destination, dst)
			vols.Unmount(ctx, mp.Name, "copyup-"+c.ID)
			if err != nil {
				return fmt.Errorf("copy image content into volume %s: %w", mp.Name, err)
			}
		}
		return nil
	})
}

// parseBind reads one -v value that the CLI has checked: "src:dst[:opts]".
func parseBind(b string) (container.MountPoint, error) {
	parts := strings.Split(b, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return container.MountPoint{}, errorf(errdefs.ErrInvalidArgument, "invalid volume specification: '%s'", b)
	}
	mp := container.MountPoint{Source: parts[0], Destination: parts[1], RW: true}
	if filepath.IsAbs(parts[0]) {
		mp.Type = mount.TypeBind
		mp.Propagation = mount.PropagationRPrivate
	} else {
		mp.Type, mp.Name, mp.Source, mp.Driver = mount.TypeVolume, parts[0], "", "local"
	}
	if len(parts) == 3 {
		mp.Mode = parts[2]
		for o := range strings.SplitSeq(parts[2], ",") {
			switch o {
			case "ro":
				mp.RW = false
			case "rw", "z", "Z", "":
			case "nocopy":
				if mp.Type != mount.TypeVolume {
					return container.MountPoint{}, errorf(errdefs.ErrInvalidArgument, "invalid volume specification: '%s'", b)
				}
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				mp.Propagation = mount.Propagation(o)
			default:
				return container.MountPoint{}, errorf(errdefs.ErrInvalidArgument, "invalid mode: %s", o)
			}
		}
		if strings.Contains(","+parts[2]+",", ",nocopy,") {
			mp.Mode = "nocopy"
		}
	}
	if mp.Type == mount.TypeBind {
		if _, err := os.Stat(mp.Source); os.IsNotExist(err) {
			// Docker creates a missing -v host path as a directory.
			if err := os.MkdirAll(mp.Source, 0o755); err != nil {
				return container.MountPoint{}, fmt.Errorf("create bind source %s: %w", mp.Source, err)
			}
		}
	}
	return mp, nil
}

// fromMount converts one --mount into a mount point.
func fromMount(m mount.Mount) (container.MountPoint, error) {
	mp := container.MountPoint{Type: m.Type, Destination: m.Target, RW: !m.ReadOnly}
	switch m.Type {
	case mount.TypeBind:
		if !filepath.IsAbs(m.Source) {
			return mp, errorf(errdefs.ErrInvalidArgument, "invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		if _, err := os.Stat(m.Source); err != nil {
			create := m.BindOptions != nil && m.BindOptions.CreateMountpoint
			if !create {
				return mp, errorf(errdefs.ErrInvalidArgument, "invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
			}
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return mp, err
			}
		}
		mp.Source, mp.Propagation = m.Source, mount.PropagationRPrivate
		if m.BindOptions != nil && m.BindOptions.Propagation != "" {
			mp.Propagation = m.BindOptions.Propagation
		}
	case mount.TypeVolume:
		mp.Name, mp.Driver = m.Source, "local"
		if m.VolumeOptions != nil && m.VolumeOptions.NoCopy {
			mp.Mode = "nocopy"
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return mp, errorf(errdefs.ErrInvalidArgument, "invalid mount config for type \"tmpfs\": source must not be specified")
		}
		var opts []string
		if o := m.TmpfsOptions; o != nil {
			if o.SizeBytes > 0 {
				opts = append(opts, fmt.Sprintf("size=%dk", (o.SizeBytes+1023)/1024))
			}
			if o.Mode != 0 {
				opts = append(opts, fmt.Sprintf("mode=%o", o.Mode.Perm()))
			}
		}
		mp.Mode = strings.Join(opts, ",")
	default:
		return mp, errorf(errdefs.ErrInvalidArgument, "invalid mount config: mount type unknown: %q", m.Type)
	}
	return mp, nil
}

// specMounts turns the container's mount points and the files Docker
// bind-mounts (/etc/hosts, /etc/hostname, /etc/resolv.conf) into OCI
// mounts, mounting the volumes that need it.
func (e *Engine) specMounts(ctx context.Context, c *Container) ([]specs.Mount, error) {
	var out []specs.Mount
	dir := e.containerDir(c.ID)
	taken := map[string]bool{}
	for _, mp := range c.Mounts {
		taken[mp.Destination] = true
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		dst := "/etc/" + f
		if taken[dst] {
			continue
		}
		opts := []string{"rbind", "rprivate", "nosuid", "nodev", "noexec"}
		if c.HostConfig.ReadonlyRootfs {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: dst, Type: "bind", Source: filepath.Join(dir, f), Options: opts})
	}
	var vols *volume.Store
	for _, mp := range c.Mounts {
		ro := "rw"
		if !mp.RW {
			ro = "ro"
		}
		switch mp.Type {
		case mount.TypeTmpfs:
			opts := []string{"nosuid", "nodev", "noexec", ro}
			if mp.Mode != "" {
				opts = append(opts, strings.Split(mp.Mode, ",")...)
			}
			out = append(out, specs.Mount{Destination: mp.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts})
			continue
		case mount.TypeVolume:
			if vols == nil {
				var err error
				if vols, err = e.volumes(); err != nil {
					return nil, err
				}
			}
			src, err := vols.Mount(ctx, mp.Name, c.ID)
			if err != nil {
				return nil, err
			}
			mp.Source = src
		}
		prop := string(mp.Propagation)
		if prop == "" {
			prop = "rprivate"
		}
		out = append(out, specs.Mount{Destination: mp.Destination, Type: "bind", Source: mp.Source, Options: []string{"rbind", prop, ro}})
	}
	return out, nil
}

// tmpfsAt reports whether --tmpfs mounts something at p ("--tmpfs /p"
// records no options).
func tmpfsAt(tmpfs map[string]string, p string) bool {
	for dst := range tmpfs {
		if path.Clean(dst) == path.Clean(p) {
			return true
		}
	}
	return false
}
