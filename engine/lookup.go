package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
)

// FindImage finds an image record the way docker's commands take an image
// argument: a name ("busybox", "busybox:1.36", "reg:5000/x@sha256:…"), or
// an image ID or a unique prefix of one ("sha256:…" or hex).
func (e *Engine) FindImage(ctx context.Context, s string) (meta.Image, error) {
	var recs []meta.Image
	if err := e.withMeta(ctx, func(db *meta.DB) (err error) {
		recs, err = db.ListImages(ctx)
		return err
	}); err != nil {
		return meta.Image{}, err
	}
	if r, err := ref.Parse(s); err == nil {
		for _, rec := range recs {
			if rec.Name == r.String() {
				return rec, nil
			}
		}
		if r.IsDigested() {
			for _, rec := range recs {
				if rec.Target.Digest == r.Digest() && strings.HasPrefix(rec.Name, r.Repository()+":") {
					return rec, nil
				}
			}
		}
	}
	if ref.LooksLikeID(s) {
		prefix := strings.TrimPrefix(s, "sha256:")
		var found *meta.Image
		for i, rec := range recs {
			if !strings.HasPrefix(rec.Config.Encoded(), prefix) {
				continue
			}
			if found != nil && found.Config != rec.Config {
				return meta.Image{}, fmt.Errorf("multiple IDs found with provided prefix: %s: %w", s, errdefs.ErrInvalidArgument)
			}
			found = &recs[i]
		}
		if found != nil {
			return *found, nil
		}
	}
	return meta.Image{}, errorf(errdefs.ErrNotFound, "No such image: %s", familiar(s))
}

// ResolveImage reads the image a record names from the content store, for
// the platform it was pulled for.
func (e *Engine) ResolveImage(ctx context.Context, rec meta.Image) (image.Image, error) {
	platform := e.platform
	if rec.Platform != nil {
		platform = *rec.Platform
	}
	return image.Resolve(ctx, e.content, rec.Target, platform)
}

// familiar shows a name as docker does in messages ("busybox:latest").
func familiar(s string) string {
	if r, err := ref.Parse(s); err == nil {
		return r.Familiar()
	}
	return s
}
