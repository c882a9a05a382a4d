package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOptions are docker commit's.
type CommitOptions struct {
	// Reference names the new image (REPOSITORY[:TAG]); empty leaves it
	// dangling.
	Reference string
	Author    string
	Comment   string
	// Changes are Dockerfile instructions applied to the config: CMD,
	// ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL,
	// USER, VOLUME, WORKDIR.
	Changes []string
	// Pause freezes a running container while its changes are read
	// (docker's default).
	Pause bool
}

// emptyLayer is the diff ID of a layer without entries: docker records
// such a commit as history only (empty_layer), with no layer.
var emptyLayer = digest.FromBytes(make([]byte, 1024))

// Commit makes an image of the container's changes, as docker commit
// does: the image's layers and the container's as a new gzipped layer,
// and the container's config with changes applied. It returns the image
// ID. The image is recorded under o.Reference, or dangling, and its new
// layer is unpacked so that it runs at once.
func (e *Engine) Commit(ctx context.Context, cref string, o CommitOptions) (digest.Digest, error) {
	var name string
	if o.Reference != "" {
		r, err := ref.Parse(o.Reference)
		if err != nil {
			return "", err
		}
		if r.IsDigested() {
			return "", errorf(errdefs.ErrInvalidArgument, "refusing to create a tag with a digest reference")
		}
		name = r.String()
	}
	c, err := e.Lookup(ctx, cref)
	if err != nil {
		return "", err
	}
	rec, err := e.FindImage(ctx, c.Image)
	if err != nil {
		return "", fmt.Errorf("image of container %s: %w", c.Name, err)
	}
	parent, err := e.ResolveImage(ctx, rec)
	if err != nil {
		return "", err
	}
	raw, err := content.ReadBlob(ctx, e.content, parent.Config, image.MaxConfigSize)
	if err != nil {
		return "", err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("config of image %s: %w: %w", parent.ID(), errdefs.ErrInvalidArgument, err)
	}
	run := runConfig(c.Config, cfg.Config)
	cfg.Config = run
	cmdSet := false
	for _, ch := range o.Changes {
		if err := commitChange(&cfg.Config, ch, &cmdSet); err != nil {
			return "", err
		}
	}

	layer, diffID, err := e.commitLayer(ctx, c, o.Pause)
	if err != nil {
		return "", err
	}
	lease := newLeaseID("commit")
	defer e.withMeta(context.WithoutCancel(ctx), func(db *meta.DB) error { return db.DeleteLease(ctx, lease) })

	now := time.Now().UTC()
	empty := diffID == emptyLayer
	cfg.Created, cfg.Author = &now, o.Author
	cfg.RootFS.DiffIDs = slices.Clone(cfg.RootFS.DiffIDs)
	layers := slices.Clone(parent.Layers)
	if !empty {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		layers = append(layers, layer)
	}
	cfg.History = append(slices.Clone(cfg.History), ocispec.History{
		Created: &now, Author: o.Author, CreatedBy: strings.Join(run.Cmd, " "), Comment: o.Comment, EmptyLayer: empty,
	})
	// Keep the parent's kind of manifest: registries take a Docker one
	// only with Docker media types throughout.
	manifestType, configType := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig
	if parent.Manifest.MediaType == image.MediaTypeDockerManifest {
		manifestType, configType = image.MediaTypeDockerManifest, image.MediaTypeDockerConfig
		if !empty {
			layers[len(layers)-1].MediaType = image.MediaTypeDockerLayerGzip
		}
	}
	cdesc, err := e.putJSON(ctx, configType, cfg)
	if err != nil {
		return "", err
	}
	m := ocispec.Manifest{MediaType: manifestType, Config: cdesc, Layers: layers}
	m.SchemaVersion = 2
	data, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	mdesc := ocispec.Descriptor{MediaType: manifestType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := e.withMeta(ctx, func(db *meta.DB) error {
		return db.PutLease(ctx, lease, []digest.Digest{layer.Digest, cdesc.Digest, mdesc.Digest}, now.Add(24*time.Hour))
	}); err != nil {
		return "", err
	}
	if err := content.WriteBlob(ctx, e.content, mdesc.Digest.String(), strings.NewReader(string(data)), mdesc); err != nil {
		return "", err
	}
	img, err := image.Resolve(ctx, e.content, mdesc, e.platform)
	if err != nil {
		return "", err
	}
	if top := len(img.ChainIDs) - 1; !empty && !e.hasSnapshot(ctx, img.ChainIDs[top]) {
		if err := e.unpackLayer(ctx, img, top); err != nil {
			return "", err
		}
	}
	r := meta.Image{Name: name, Target: mdesc, Config: img.ID()}
	if name == "" {
		r.Name = img.ID().String()
	} else {
		r.Labels = map[string]string{labelTagged: now.Format(time.RFC3339Nano)}
	}
	if err := e.withMeta(ctx, func(db *meta.DB) error { return db.PutImage(ctx, r) }); err != nil {
		return "", err
	}
	e.containerEvent(ctx, c, "commit", map[string]string{"comment": o.Comment, "imageID": img.ID().String(), "imageRef": familiarName(name)})
	return img.ID(), nil
}

func familiarName(name string) string {
	if name == "" {
		return ""
	}
	if r, err := ref.Parse(name); err == nil {
		return r.Familiar()
	}
	return name
}

// commitLayer stores the container's changes as a gzipped layer blob and
// returns its descriptor and diff ID. With pause, a running container is
// frozen while its changes are read.
func (e *Engine) commitLayer(ctx context.Context, c *Container, pause bool) (ocispec.Descriptor, digest.Digest, error) {
	var none ocispec.Descriptor
	l, err := e.lock(ctx, c.ID)
	if err != nil {
		return none, "", err
	}
	defer l.Unlock()
	st, err := e.state(c)
	if err != nil {
		return none, "", err
	}
	switch st.Status {
	case "removing":
		return none, "", errorf(errdefs.ErrConflict, "You cannot commit container %s which is being removed", c.ID)
	case "dead":
		return none, "", errorf(errdefs.ErrConflict, "You cannot commit container %s which is Dead", c.ID)
	case "running":
		if pause && e.Pause(ctx, c.ID) == nil {
			defer e.Unpause(context.WithoutCancel(ctx), c.ID)
		}
	}
	tmp, err := os.CreateTemp(e.root, "commit-")
	if err != nil {
		return none, "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	blobHash, diffHash := digest.SHA256.Digester(), digest.SHA256.Digester()
	zw, err := archive.CompressStream(io.MultiWriter(tmp, blobHash.Hash()), archive.Gzip)
	if err != nil {
		return none, "", err
	}
	if err := e.writeLayer(ctx, c, io.MultiWriter(zw, diffHash.Hash())); err != nil {
		return none, "", fmt.Errorf("read the changes of container %s: %w", c.Name, err)
	}
	if err := zw.Close(); err != nil {
		return none, "", err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return none, "", err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: blobHash.Digest(), Size: size}
	if diffHash.Digest() == emptyLayer {
		return desc, emptyLayer, nil
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return none, "", err
	}
	if err := content.WriteBlob(ctx, e.content, "commit-"+desc.Digest.String(), tmp, desc); err != nil {
		return none, "", err
	}
	return desc, diffHash.Digest(), nil
}

// runConfig is the config a container runs with, in an image's terms:
// what create was asked, over the image's config, merged as dockerd
// merges them at create.
func runConfig(req *container.Config, img dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	out := img
	out.Env = slices.Clone(img.Env)
	out.Labels = maps.Clone(img.Labels)
	out.ExposedPorts = maps.Clone(img.ExposedPorts)
	out.Volumes = maps.Clone(img.Volumes)
	out.OnBuild, out.Shell = req.OnBuild, req.Shell
	if req.User != "" {
		out.User = req.User
	}
	for p := range req.ExposedPorts {
		if out.ExposedPorts == nil {
			out.ExposedPorts = map[string]struct{}{}
		}
		out.ExposedPorts[p.String()] = struct{}{}
	}
	if len(req.Env) > 0 {
		env := slices.Clone(req.Env)
		for _, kv := range img.Env {
			k, _, _ := strings.Cut(kv, "=")
			if !slices.ContainsFunc(env, func(s string) bool { return s == k || strings.HasPrefix(s, k+"=") }) {
				env = append(env, kv)
			}
		}
		out.Env = env
	}
	for k, v := range req.Labels {
		if out.Labels == nil {
			out.Labels = map[string]string{}
		}
		out.Labels[k] = v
	}
	if len(req.Entrypoint) == 0 {
		if len(req.Cmd) > 0 {
			out.Cmd = req.Cmd
		}
		if req.Entrypoint != nil {
			out.Entrypoint = nil
		}
	} else {
		out.Entrypoint, out.Cmd = req.Entrypoint, req.Cmd
	}
	if len(out.Entrypoint) == 1 && out.Entrypoint[0] == "" {
		out.Entrypoint = nil // --entrypoint ""
	}
	if h := req.Healthcheck; h != nil {
		merged := *h
		if base := img.Healthcheck; base != nil {
			if len(merged.Test) == 0 {
				merged.Test = base.Test
			}
			merged.Interval = nonZero(merged.Interval, base.Interval)
			merged.Timeout = nonZero(merged.Timeout, base.Timeout)
			merged.StartPeriod = nonZero(merged.StartPeriod, base.StartPeriod)
			merged.StartInterval = nonZero(merged.StartInterval, base.StartInterval)
			merged.Retries = nonZero(merged.Retries, base.Retries)
		}
		out.Healthcheck = &merged
	}
	if req.WorkingDir != "" {
		out.WorkingDir = req.WorkingDir
	}
	for v := range req.Volumes {
		if out.Volumes == nil {
			out.Volumes = map[string]struct{}{}
		}
		out.Volumes[v] = struct{}{}
	}
	if req.StopSignal != "" {
		out.StopSignal = req.StopSignal
	}
	return out
}

func nonZero[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// commitChange applies one --change to cfg as docker's BuildFromConfig
// does: import's instructions, and ONBUILD and HEALTHCHECK; ENTRYPOINT
// drops the CMD unless a change set one; a relative WORKDIR is taken from
// the current one.
func commitChange(cfg *dockerspec.DockerOCIImageConfig, change string, cmdSet *bool) error {
	instr, rest, _ := strings.Cut(strings.TrimSpace(change), " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToUpper(instr) {
	case "ONBUILD":
		trigger, _, _ := strings.Cut(rest, " ")
		switch t := strings.ToUpper(trigger); t {
		case "":
			return errorf(errdefs.ErrInvalidArgument, "ONBUILD requires at least one argument")
		case "ONBUILD", "FROM", "MAINTAINER":
			return errorf(errdefs.ErrInvalidArgument, "%s isn't allowed as an ONBUILD trigger", t)
		}
		cfg.OnBuild = append(cfg.OnBuild, strings.ToUpper(trigger)+strings.TrimPrefix(rest, trigger))
		return nil
	case "HEALTHCHECK":
		h, err := parseHealthcheck(rest)
		if err != nil {
			return err
		}
		cfg.Healthcheck = h
		return nil
	case "WORKDIR":
		rest = expandVars(rest, cfg.Env)
		if rest != "" && !path.IsAbs(rest) {
			rest = path.Join("/", cfg.WorkingDir, rest)
		}
		cfg.WorkingDir = rest
		return nil
	case "CMD":
		*cmdSet = true
	case "ENV", "LABEL", "EXPOSE", "VOLUME", "USER", "STOPSIGNAL":
		// Variables expand as in a Dockerfile, from the environment so far.
		change = instr + " " + expandVars(rest, cfg.Env)
	}
	err := applyChange(&cfg.ImageConfig, change)
	if err != nil {
		return err
	}
	if strings.EqualFold(instr, "ENTRYPOINT") && !*cmdSet {
		cfg.Cmd = nil
	}
	return nil
}

// parseHealthcheck reads HEALTHCHECK's arguments: NONE, or options and
// CMD in exec or shell form.
func parseHealthcheck(s string) (*container.HealthConfig, error) {
	invalid := func(format string, a ...any) error {
		return errorf(errdefs.ErrInvalidArgument, "dockerfile parse error: HEALTHCHECK "+format, a...)
	}
	if strings.EqualFold(s, "NONE") {
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	h := &container.HealthConfig{}
	for strings.HasPrefix(s, "--") {
		opt, rest, _ := strings.Cut(s, " ")
		s = strings.TrimSpace(rest)
		k, v, ok := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
		if !ok {
			return nil, invalid("option %s needs a value", opt)
		}
		if k == "retries" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, invalid("--retries: invalid value %q", v)
			}
			h.Retries = n
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, invalid("--%s: invalid duration %q", k, v)
		}
		switch k {
		case "interval":
			h.Interval = d
		case "timeout":
			h.Timeout = d
		case "start-period":
			h.StartPeriod = d
		case "start-interval":
			h.StartInterval = d
		default:
			return nil, invalid("unknown flag: --%s", k)
		}
	}
	kw, rest, _ := strings.Cut(s, " ")
	if !strings.EqualFold(kw, "CMD") {
		return nil, invalid("requires CMD or NONE, got %q", kw)
	}
	rest = strings.TrimSpace(rest)
	var args []string
	if strings.HasPrefix(rest, "[") && json.Unmarshal([]byte(rest), &args) == nil {
		h.Test = append([]string{"CMD"}, args...)
	} else if rest != "" {
		h.Test = []string{"CMD-SHELL", rest}
	} else {
		return nil, invalid("missing command after CMD")
	}
	return h, nil
}

// expandVars replaces $NAME, ${NAME}, ${NAME:-word} and ${NAME:+word}
// with values from env, as a Dockerfile does, outside single quotes; a
// backslash keeps a "$" as it is. Quotes stay for the word splitting
// after.
func expandVars(s string, env []string) string {
	lookup := func(name string) (string, bool) {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], name+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	var b strings.Builder
	inSingle := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && !inSingle && i+1 < len(s):
			b.WriteByte(c)
			b.WriteByte(s[i+1])
			i++
			continue
		case c == '\'':
			inSingle = !inSingle
		case c == '$' && !inSingle && i+1 < len(s):
			if s[i+1] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					break
				}
				expr := s[i+2 : i+end]
				i += end
				name, word, op := expr, "", ""
				if k := strings.Index(expr, ":"); k >= 0 && k+1 < len(expr) {
					name, op, word = expr[:k], expr[k+1:k+2], expr[k+2:]
				}
				v, ok := lookup(name)
				switch {
				case op == "-" && (!ok || v == ""):
					v = word
				case op == "+":
					if ok && v != "" {
						v = word
					}
				}
				b.WriteString(v)
				continue
			}
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || j > i+1 && s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j > i+1 {
				v, _ := lookup(s[i+1 : j])
				b.WriteString(v)
				i = j - 1
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
