package engine

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/shim"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
)

// ContainerInfo is a container's record with its current state.
type ContainerInfo struct {
	*Container
	State shim.State
}

// Containers lists every container, newest first, with its state.
func (e *Engine) Containers(ctx context.Context) ([]ContainerInfo, error) {
	out := []ContainerInfo{}
	err := e.eachContainer(ctx, func(c *Container) {
		if st, err := e.state(c); err == nil {
			out = append(out, ContainerInfo{c, st})
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b ContainerInfo) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Info returns one container with its state.
func (e *Engine) Info(ctx context.Context, ref string) (ContainerInfo, error) {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return ContainerInfo{}, err
	}
	st, err := e.state(c)
	if err != nil {
		return ContainerInfo{}, err
	}
	return ContainerInfo{c, st}, nil
}

// Running reports whether the state is one docker calls running.
func (i ContainerInfo) Running() bool {
	return i.State.Status == "running" || i.State.Status == "paused" || i.State.Status == "restarting"
}

// Inspect is `docker inspect`'s JSON for a container.
func (e *Engine) Inspect(ctx context.Context, ref string) (*container.InspectResponse, error) {
	info, err := e.Info(ctx, ref)
	if err != nil {
		return nil, err
	}
	c, st := info.Container, info.State
	dir := e.containerDir(c.ID)
	r := &container.InspectResponse{
		ID:             c.ID,
		Created:        c.Created.Format(time.RFC3339Nano),
		Path:           c.Path,
		Args:           c.Args,
		State:          dockerState(st),
		Image:          c.Image,
		ResolvConfPath: dir + "/resolv.conf",
		HostnamePath:   dir + "/hostname",
		HostsPath:      dir + "/hosts",
		Name:           "/" + c.Name,
		RestartCount:   st.RestartCount,
		Driver:         c.Driver,
		Platform:       c.Platform,
		Mounts:         c.Mounts,
		NetworkSettings: &container.NetworkSettings{
			Ports:    network.PortMap{},
			Networks: map[string]*network.EndpointSettings{},
		},
	}
	r.Config, r.HostConfig = inspectConfigs(c)
	if c.Args == nil {
		r.Args = []string{}
	}
	if r.Mounts == nil {
		r.Mounts = []container.MountPoint{}
	}
	if c.HostConfig.LogConfig.Type != "none" {
		r.LogPath = e.logPath(c.ID)
	}
	if mounts, err := e.snapshots.Mounts(ctx, c.Snapshot); err == nil {
		data := map[string]string{}
		for _, m := range mounts {
			for _, o := range m.Options {
				k, v, _ := strings.Cut(o, "=")
				if name, ok := graphDriverKeys[k]; ok {
					data[name] = v
				}
			}
		}
		if len(data) > 0 {
			// Where the root is mounted while the container runs.
			data["MergedDir"] = filepath.Join(e.bundleDir(c.ID), "rootfs")
		}
		r.GraphDriver = &storage.DriverData{Name: c.Driver, Data: data}
	}
	mode := string(c.HostConfig.NetworkMode)
	r.NetworkSettings.Networks[mode] = &network.EndpointSettings{}
	return r, nil
}

// graphDriverKeys name the overlay options inspect shows in GraphDriver.
var graphDriverKeys = map[string]string{"lowerdir": "LowerDir", "upperdir": "UpperDir", "workdir": "WorkDir"}

// dockerState is Docker's State object for a shim state.
func dockerState(st shim.State) *container.State {
	s := &container.State{
		Status:     container.ContainerState(st.Status),
		Running:    st.Status == "running" || st.Status == "paused" || st.Status == "restarting",
		Paused:     st.Status == "paused",
		Restarting: st.Status == "restarting",
		OOMKilled:  st.OOMKilled,
		Dead:       st.Status == "dead",
		Pid:        st.Pid,
		ExitCode:   st.ExitCode,
		Error:      st.Error,
		StartedAt:  zeroTime(st.StartedAt),
		FinishedAt: zeroTime(st.FinishedAt),
	}
	if !s.Running {
		s.Pid = 0
	}
	if h := st.Health; h != nil {
		s.Health = &container.Health{Status: container.HealthStatus(h.Status), FailingStreak: h.FailingStreak}
		for _, r := range h.Log {
			s.Health.Log = append(s.Health.Log, &container.HealthcheckResult{Start: r.Start, End: r.End, ExitCode: r.ExitCode, Output: r.Output})
		}
	}
	return s
}

// zeroTime formats t as Docker does, with Go's zero time for "never".
func zeroTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// ContainerSize is the container's writable layer size and that plus its
// image's (docker ps -s: "SIZE (virtual ...)").
func (e *Engine) ContainerSize(ctx context.Context, c *Container) (rw, virtual int64) {
	rw, _ = e.snapshots.Usage(ctx, c.Snapshot)
	virtual = rw
	if rec, err := e.FindImage(ctx, c.Image); err == nil {
		if img, err := e.ResolveImage(ctx, rec); err == nil {
			virtual += e.imageSize(ctx, img)
		}
	}
	return rw, virtual
}
