package engine

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
	"github.com/opencontainers/go-digest"
)

// ImageSummary is one image name as `images` lists it: the record, and
// what the image it names is made of.
type ImageSummary struct {
	Record meta.Image
	// Ref is the parsed record name; Tag() is "" for a digest-only record.
	Ref     ref.Reference
	ID      digest.Digest // the config digest
	Created time.Time     // the config's created time; zero when it has none
	// Size is the image's unpacked size: the sum of the snapshot usage of
	// its layers (see Engine.imageSize).
	Size   int64
	Labels map[string]string // the config's labels
	// Digest is the repo digest docker shows for the name: the target of a
	// pulled name, "" for one made by TagImage.
	Digest digest.Digest
}

// ListImages returns a summary of every image record, newest image first,
// then by name. Records whose content is missing
// or unreadable are skipped, as docker skips images it cannot load.
func (e *Engine) ListImages(ctx context.Context) ([]ImageSummary, error) {
	recs, err := e.records(ctx)
	if err != nil {
		return nil, err
	}
	sizes := map[digest.Digest]int64{}
	var out []ImageSummary
	for _, rec := range recs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var r ref.Reference // zero for a dangling image, recorded under its ID
		if !Dangling(rec) {
			if r, err = ref.Parse(rec.Name); err != nil {
				e.log.WarnContext(ctx, "skip image with a bad name", "name", rec.Name, "err", err)
				continue
			}
		}
		img, err := e.ResolveImage(ctx, rec)
		if err != nil {
			e.log.WarnContext(ctx, "skip unreadable image", "name", rec.Name, "err", err)
			continue
		}
		size, ok := sizes[img.ID()]
		if !ok {
			size = e.imageSize(ctx, img)
			sizes[img.ID()] = size
		}
		s := ImageSummary{Record: rec, Ref: r, ID: img.ID(), Size: size, Labels: img.ConfigFile.Config.Labels}
		if img.ConfigFile.Created != nil {
			s.Created = *img.ConfigFile.Created
		}
		if _, tagged := rec.Labels[labelTagged]; !tagged && !r.IsZero() {
			s.Digest = rec.Target.Digest
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].Record.Name < out[j].Record.Name
	})
	return out, nil
}

// Dangling reports whether rec is an image without a name, recorded
// under its ID (as import and load leave one): docker's <none>:<none>.
func Dangling(rec meta.Image) bool {
	d, err := digest.Parse(rec.Name)
	return err == nil && d == rec.Config
}

// records lists every image record.
func (e *Engine) records(ctx context.Context) (recs []meta.Image, err error) {
	err = e.withMeta(ctx, func(db *meta.DB) error {
		recs, err = db.ListImages(ctx)
		return err
	})
	return recs, err
}

// imageSize is the unpacked size of img from its layer snapshots' disk
// usage, measured when each was committed: with overlay every snapshot
// holds only its own layer, so the sizes add up; with vfs each holds a
// full copy of the ones beneath, so the top one is the whole image.
// Layers not unpacked count as 0.
func (e *Engine) imageSize(ctx context.Context, img image.Image) int64 {
	sizes := e.layerSizes(ctx, img)
	var total int64
	for _, s := range sizes {
		total += s
	}
	return total
}

// layerSizes is the unpacked size of each of img's layers, bottom first.
// With vfs a layer's size is its snapshot's usage less its parent's.
func (e *Engine) layerSizes(ctx context.Context, img image.Image) []int64 {
	sizes := make([]int64, len(img.ChainIDs))
	var below int64
	for i, c := range img.ChainIDs {
		u, err := e.snapshots.Usage(ctx, c.String())
		if err != nil {
			continue
		}
		if e.driver == "vfs" {
			u, below = max(u-below, 0), u
		}
		sizes[i] = u
	}
	return sizes
}

// TagImage makes target a name of the image source names (a name or an ID
// prefix, as FindImage takes them): a new record pointing at the same
// manifest and config, as `docker tag` does.
func (e *Engine) TagImage(ctx context.Context, source, target string) error {
	rec, err := e.FindImage(ctx, source)
	if err != nil {
		return err
	}
	r, err := ref.Parse(target)
	if err != nil {
		return err
	}
	if r.IsDigested() {
		return fmt.Errorf("refusing to create a tag with a digest reference: %w", errdefs.ErrInvalidArgument)
	}
	if err := e.withMeta(ctx, func(db *meta.DB) error {
		return db.PutImage(ctx, meta.Image{
			Name: r.String(), Target: rec.Target, Config: rec.Config, Platform: rec.Platform,
			Labels: map[string]string{labelTagged: time.Now().UTC().Format(time.RFC3339Nano)},
		})
	}); err != nil {
		return err
	}
	e.Event(ctx, "image", "tag", rec.Config.String(), map[string]string{"name": r.Familiar()})
	return nil
}

// MatchReference reports whether the familiar form of r matches the
// path.Match pattern, with its tag ("busybox:latest") or without
// ("busybox"), as docker's reference= filter does (reference.FamiliarMatch).
func MatchReference(pattern string, r ref.Reference) (bool, error) {
	if ok, err := pathMatch(pattern, r.Familiar()); ok || err != nil {
		return ok, err
	}
	return pathMatch(pattern, r.FamiliarName())
}

// pathMatch is path.Match with the error classified.
func pathMatch(pattern, name string) (bool, error) {
	ok, err := path.Match(pattern, name)
	if err != nil {
		return false, fmt.Errorf("invalid reference pattern %q: %v: %w", pattern, err, errdefs.ErrInvalidArgument)
	}
	return ok, nil
}

// shortID is the 12-hex image ID docker prints.
func shortID(d digest.Digest) string {
	return strings.TrimPrefix(short(d), "sha256:")
}
