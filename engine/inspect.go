package engine

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageInspect is an image as `docker image inspect` shows it (docker's
// api/types/image.InspectResponse, without the fields docker 28 dropped).
type ImageInspect struct {
	ID            string          `json:"Id"`
	RepoTags      []string        `json:"RepoTags"`
	RepoDigests   []string        `json:"RepoDigests"`
	Parent        string          `json:"Parent"`
	Comment       string          `json:"Comment"`
	Created       string          `json:"Created,omitempty"`
	DockerVersion string          `json:"DockerVersion"`
	Author        string          `json:"Author"`
	Config        ContainerConfig `json:"Config"`
	Architecture  string          `json:"Architecture"`
	Variant       string          `json:"Variant,omitempty"`
	Os            string          `json:"Os"`
	OsVersion     string          `json:"OsVersion,omitempty"`
	Size          int64           `json:"Size"`
	GraphDriver   DriverData      `json:"GraphDriver"`
	RootFS        RootFS          `json:"RootFS"`
	Metadata      ImageMetadata   `json:"Metadata"`
}

// ContainerConfig is docker's container config shape, as image inspect
// fills it from the OCI image config.
type ContainerConfig struct {
	Hostname     string              `json:"Hostname"`
	Domainname   string              `json:"Domainname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	AttachStdout bool                `json:"AttachStdout"`
	AttachStderr bool                `json:"AttachStderr"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	StdinOnce    bool                `json:"StdinOnce"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
	Image        string              `json:"Image"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	OnBuild      []string            `json:"OnBuild"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// DriverData names the storage driver and its directories for the image.
type DriverData struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// RootFS lists the image's layers by diff ID.
type RootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers,omitempty"`
}

// ImageMetadata is docker's local metadata of an image.
type ImageMetadata struct {
	LastTagTime time.Time `json:"LastTagTime"`
}

// InspectImage describes the image name (a name or an ID prefix, as
// FindImage takes them) as docker's image inspect does.
func (e *Engine) InspectImage(ctx context.Context, name string) (ImageInspect, error) {
	rec, err := e.FindImage(ctx, name)
	if err != nil {
		return ImageInspect{}, err
	}
	img, err := e.ResolveImage(ctx, rec)
	if err != nil {
		return ImageInspect{}, err
	}
	recs, err := e.records(ctx)
	if err != nil {
		return ImageInspect{}, err
	}
	cf := img.ConfigFile
	out := ImageInspect{
		ID:           img.ID().String(),
		RepoTags:     []string{},
		RepoDigests:  []string{},
		Author:       cf.Author,
		Config:       containerConfig(cf.Config),
		Architecture: cf.Architecture, Variant: cf.Variant, Os: cf.OS, OsVersion: cf.OSVersion,
		Size:   e.imageSize(ctx, img),
		RootFS: RootFS{Type: cf.RootFS.Type},
	}
	if cf.Created != nil {
		out.Created = cf.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, h := range cf.History {
		if h.Comment != "" {
			out.Comment = h.Comment // docker shows the config's comment: the last one
		}
	}
	for _, d := range cf.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	digests := map[string]bool{}
	for _, r := range sameImage(recs, rec.Config) {
		p, err := ref.Parse(r.Name)
		if err != nil || Dangling(r) {
			continue
		}
		if p.Tag() != "" && !p.IsDigested() {
			out.RepoTags = append(out.RepoTags, p.Familiar())
		}
		if t, ok := r.Labels[labelTagged]; ok {
			if at, err := time.Parse(time.RFC3339Nano, t); err == nil && at.After(out.Metadata.LastTagTime) {
				out.Metadata.LastTagTime = at
			}
		} else if d := familiarRepo(p) + "@" + r.Target.Digest.String(); !digests[d] {
			digests[d] = true // a pulled name: its repo digest
			out.RepoDigests = append(out.RepoDigests, d)
		}
	}
	sort.Strings(out.RepoTags)
	sort.Strings(out.RepoDigests)
	out.GraphDriver = e.driverData(ctx, img.ChainIDs)
	return out, nil
}

// familiarRepo is the repository docker shows in a repo digest ("busybox").
func familiarRepo(r ref.Reference) string { return r.FamiliarName() }

// containerConfig is docker's shape of the OCI config's runtime part.
func containerConfig(c ocispec.ImageConfig) ContainerConfig {
	out := ContainerConfig{
		User: c.User, Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint,
		WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal,
		ArgsEscaped: c.ArgsEscaped, //nolint:staticcheck // docker still shows it
	}
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = c.ExposedPorts
	}
	if len(c.Volumes) > 0 {
		out.Volumes = c.Volumes
	}
	return out
}

// driverData is GraphDriver as docker shows it: overlay2 with the
// directories of the image's layers (read from a short-lived view of the
// top one), or vfs with no data.
func (e *Engine) driverData(ctx context.Context, chains []digest.Digest) DriverData {
	if e.driver == "vfs" {
		return DriverData{Name: "vfs"}
	}
	dd := DriverData{Name: "overlay2"}
	if len(chains) == 0 {
		return dd
	}
	key := "inspect-" + randomHex(6)
	mounts, err := e.snapshots.View(ctx, key, chains[len(chains)-1].String())
	if err != nil {
		return dd
	}
	defer e.snapshots.Remove(context.WithoutCancel(ctx), key)
	var dirs []string
	for _, m := range mounts {
		if m.Type == "bind" {
			dirs = []string{m.Source}
		}
		for _, o := range m.Options {
			if l, ok := strings.CutPrefix(o, "lowerdir="); ok {
				dirs = strings.Split(l, ":")
			}
		}
	}
	if len(dirs) == 0 {
		return dd
	}
	dd.Data = map[string]string{"UpperDir": dirs[0]}
	if len(dirs) > 1 {
		dd.Data["LowerDir"] = strings.Join(dirs[1:], ":")
	}
	return dd
}

// HistoryItem is one row of `docker history`: a step of the image's
// build, newest first.
type HistoryItem struct {
	ID        string // the image ID on the newest row, "<missing>" on the others
	Created   time.Time
	CreatedBy string
	Size      int64 // 0 for a step that made no layer
	Comment   string
	Tags      []string
}

// History returns the build history of the image name, newest step first,
// each step that made a layer with that layer's unpacked size.
func (e *Engine) History(ctx context.Context, name string) ([]HistoryItem, error) {
	rec, err := e.FindImage(ctx, name)
	if err != nil {
		return nil, err
	}
	img, err := e.ResolveImage(ctx, rec)
	if err != nil {
		return nil, err
	}
	sizes := e.layerSizes(ctx, img)
	var out []HistoryItem
	layer := 0
	for _, h := range img.ConfigFile.History {
		it := HistoryItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			it.Created = *h.Created
		}
		if !h.EmptyLayer {
			if layer < len(sizes) {
				it.Size = sizes[layer]
			}
			layer++
		}
		out = append(out, it)
	}
	if len(out) == 0 {
		// No history: one row per layer, as docker shows such images.
		for _, s := range sizes {
			out = append(out, HistoryItem{ID: "<missing>", Size: s})
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID().String()
		recs, err := e.records(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range sameImage(recs, rec.Config) {
			if p, err := ref.Parse(r.Name); err == nil && !Dangling(r) && p.Tag() != "" && !p.IsDigested() {
				out[0].Tags = append(out[0].Tags, p.Familiar())
			}
		}
	}
	return out, nil
}
