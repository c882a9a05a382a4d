package engine

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushOptions tune Push.
type PushOptions struct {
	Progress func(Progress) // optional; Status is docker push's word for the layer
}

// PushResult is what a push sent.
type PushResult struct {
	Ref ref.Reference
	// Pushed is what the tag now points at: the record's target, or the
	// platform manifest when PlatformOnly.
	Pushed ocispec.Descriptor
	// PlatformOnly is true when the record's target is an index whose
	// other platforms are not in the store, so that only the platform
	// manifest was pushed; Index is then the index left behind.
	PlatformOnly bool
	Index        ocispec.Descriptor
}

// Push sends the image stored under name (pull, load, import) to the
// registry its name points at: every layer and config first (skipping
// blobs the registry has, mounting them from another repository of the
// same registry that holds the image under another name), the manifest
// next and, when the image is an index and the store holds every manifest
// of it, the index last.
func (e *Engine) Push(ctx context.Context, name string, o PushOptions) (PushResult, error) {
	r, err := ref.Parse(name)
	if err != nil {
		return PushResult{}, err
	}
	progress := o.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	var rec meta.Image
	var recs []meta.Image
	if err := e.withMeta(ctx, func(db *meta.DB) (err error) {
		if rec, err = db.GetImage(ctx, r.String()); err != nil {
			return err
		}
		recs, err = db.ListImages(ctx)
		return err
	}); err != nil {
		if errdefs.IsNotFound(err) {
			return PushResult{}, fmt.Errorf("An image does not exist locally with the tag: %s: %w", r.FamiliarName(), errdefs.ErrNotFound)
		}
		return PushResult{}, err
	}
	// Repositories on the same registry that hold the same image.
	var mountFrom []string
	for _, other := range recs {
		o, err := ref.Parse(other.Name)
		if err != nil || o.Domain() != r.Domain() || o.Repository() == r.Repository() {
			continue
		}
		if other.Target.Digest == rec.Target.Digest || other.Config == rec.Config {
			mountFrom = append(mountFrom, o.Path())
		}
	}
	img, err := e.ResolveImage(ctx, rec)
	if err != nil {
		return PushResult{}, err
	}
	res := PushResult{Ref: r, Pushed: rec.Target}
	manifests := []image.Image{img}
	if image.IsIndex(rec.Target.MediaType) {
		all, err := e.indexImages(ctx, rec.Target)
		if err != nil {
			res.PlatformOnly, res.Index, res.Pushed = true, rec.Target, img.Manifest
		} else {
			manifests = all
		}
	}
	for _, m := range manifests {
		if err := e.pushImage(ctx, r, m, mountFrom, progress); err != nil {
			return PushResult{}, err
		}
	}
	if image.IsIndex(res.Pushed.MediaType) {
		if err := e.pushManifest(ctx, r.Repository()+"@"+res.Pushed.Digest.String(), res.Pushed); err != nil {
			return PushResult{}, err
		}
	}
	tagged := r.Repository() + ":" + r.Tag()
	if r.IsDigested() {
		tagged = r.Repository() + "@" + res.Pushed.Digest.String()
	}
	if err := e.pushManifest(ctx, tagged, res.Pushed); err != nil {
		return PushResult{}, err
	}
	e.Event(ctx, "image", "push", r.Familiar(), map[string]string{"name": r.Familiar()})
	return res, nil
}

// indexImages resolves every image of the index target from the store;
// it fails if any manifest, config or layer of it is missing.
func (e *Engine) indexImages(ctx context.Context, target ocispec.Descriptor) ([]image.Image, error) {
	data, err := content.ReadBlob(ctx, e.content, target, image.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	idx, err := image.ParseIndex(data)
	if err != nil {
		return nil, err
	}
	var out []image.Image
	for _, d := range idx.Manifests {
		if !image.IsManifest(d.MediaType) {
			return nil, fmt.Errorf("nested index %s: %w", d.Digest, errdefs.ErrNotImplemented)
		}
		img, err := image.Resolve(ctx, e.content, d, ocispec.Platform{})
		if err != nil {
			return nil, err
		}
		for _, l := range img.Layers {
			if _, err := e.content.Info(ctx, l.Digest); err != nil {
				return nil, err
			}
		}
		out = append(out, img)
	}
	return out, nil
}

// pushImage pushes the layers and config of img to r's repository, then
// its manifest by digest.
func (e *Engine) pushImage(ctx context.Context, r ref.Reference, img image.Image, mountFrom []string, progress func(Progress)) error {
	for _, l := range img.Layers {
		progress(Progress{ID: short(l.Digest), Status: "Preparing"})
	}
	for _, l := range img.Layers {
		status, err := e.pushBlob(ctx, r, l, mountFrom, newMeter(short(l.Digest), "Pushing", l.Size, progress))
		if err != nil {
			return err
		}
		progress(Progress{ID: short(l.Digest), Status: status})
	}
	if _, err := e.pushBlob(ctx, r, img.Config, mountFrom, nil); err != nil {
		return err
	}
	return e.pushManifest(ctx, r.Repository()+"@"+img.Manifest.Digest.String(), img.Manifest)
}

// pushBlob pushes one blob from the store and says what happened in
// docker push's words.
// With a meter, the upload reports its bytes as "Pushing" progress; the
// meter (a quiet one if nil) also tells an upload from a mount.
func (e *Engine) pushBlob(ctx context.Context, r ref.Reference, desc ocispec.Descriptor, mountFrom []string, m *meter) (string, error) {
	if ok, err := e.registry.Exists(ctx, r.String(), desc); err == nil && ok {
		return "Layer already exists", nil
	}
	rc, err := e.content.Open(ctx, desc.Digest)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if m == nil {
		m = &meter{quiet: true}
	}
	if err := e.registry.PushBlob(ctx, r.String(), desc, m.reader(rc), mountFrom...); err != nil {
		return "", err
	}
	// Nothing read: the registry mounted the blob from another repository.
	if m.current == 0 && desc.Size > 0 && len(mountFrom) > 0 {
		return "Mounted from " + mountFrom[0], nil
	}
	return "Pushed", nil
}

// pushManifest pushes a manifest or index from the store under name.
func (e *Engine) pushManifest(ctx context.Context, name string, desc ocispec.Descriptor) error {
	data, err := content.ReadBlob(ctx, e.content, desc, image.MaxManifestSize)
	if err != nil {
		return err
	}
	if desc.MediaType == "" {
		if desc.MediaType, err = image.MediaTypeOf(data); err != nil {
			return err
		}
	}
	return e.registry.PushManifest(ctx, name, desc, data)
}
