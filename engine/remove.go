package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
	"github.com/opencontainers/go-digest"
)

// labelTagged marks a record made by TagImage rather than by a pull, with
// the time it was made (RFC 3339): docker's LastTagTime, and the reason
// removing it untags no repo digest (a tag made by `docker tag` has none).
const labelTagged = "io.berth.image.tagged"

// ImageDeleteItem is one line of what `docker rmi` prints: a name that
// went ("Untagged: busybox:latest") or an image or layer ID that was
// deleted ("Deleted: sha256:…").
type ImageDeleteItem struct {
	Untagged string
	Deleted  digest.Digest
}

// classified is an error whose text is docker's message, as the user sees
// it, and that still is its errdefs class.
type classified struct {
	msg   string
	class error
}

func (e *classified) Error() string { return e.msg }
func (e *classified) Unwrap() error { return e.class }

// RemoveImage removes one image argument as `docker rmi` does.
//
// A name is untagged; when it was the last name of its image the image is
// deleted too: its record, the layer snapshots and blobs that no other
// image (or running pull's lease) uses. An ID deletes the image when it
// has at most one tag and all its names are in one repository; otherwise
// only force does it (untagging every name).
func (e *Engine) RemoveImage(ctx context.Context, name string, force bool) ([]ImageDeleteItem, error) {
	items, err := e.removeImage(ctx, name, force)
	deleted := false
	for _, it := range items {
		switch {
		case it.Untagged != "":
			e.Event(ctx, "image", "untag", it.Untagged, map[string]string{"name": it.Untagged})
		case !deleted:
			// The image's own ID is the first deletion; the layers
			// after it make no event, as in Docker.
			deleted = true
			e.Event(ctx, "image", "delete", it.Deleted.String(), map[string]string{"name": it.Deleted.String()})
		}
	}
	return items, err
}

func (e *Engine) removeImage(ctx context.Context, name string, force bool) ([]ImageDeleteItem, error) {
	rec, err := e.FindImage(ctx, name)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, &classified{msg: "No such image: " + familiar(name), class: errdefs.ErrNotFound}
		}
		return nil, err
	}
	img, resolveErr := e.ResolveImage(ctx, rec)
	id := rec.Config
	users, err := e.imageUsers(ctx, id)
	if err != nil {
		return nil, err
	}
	var items []ImageDeleteItem
	err = e.withMeta(ctx, func(db *meta.DB) error {
		return db.Update(ctx, func(tx *meta.Tx) error {
			items = nil
			all, err := tx.ListImages()
			if err != nil {
				return err
			}
			names := sameImage(all, id)
			var drop []meta.Image
			if byName(name, rec) {
				if err := users.refuseUntag(name, id, names, force); err != nil {
					return err
				}
				drop = untagged(names, rec)
			} else {
				if err := users.refuseDelete(id, names, force); err != nil {
					return err
				}
				if !singleReference(names) && !force {
					return &classified{
						msg:   fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(id)),
						class: errdefs.ErrConflict,
					}
				}
				for _, n := range names {
					drop = append(drop, n)
					if r, err := ref.Parse(n.Name); err == nil && !r.IsDigested() && !Dangling(n) {
						drop = append(drop, digestNames(names, n, r)...)
					}
				}
			}
			seen := map[string]bool{}
			for _, d := range drop {
				if seen[d.Name] {
					continue
				}
				seen[d.Name] = true
				if d.Target.Digest != "" { // a name to delete, not just a line to print
					if err := tx.DeleteImage(d.Name); err != nil && !errdefs.IsNotFound(err) {
						return err
					}
				}
				if !Dangling(d) {
					items = append(items, ImageDeleteItem{Untagged: familiar(d.Name)})
				}
			}
			return users.keepImage(tx, rec)
		})
	})
	if err != nil {
		return nil, err
	}
	recs, err := e.records(ctx)
	if err != nil {
		return items, err
	}
	if len(sameImage(recs, id)) > 0 {
		return items, nil
	}
	items = append(items, ImageDeleteItem{Deleted: id})
	if resolveErr != nil {
		// The record is gone; what it pointed at cannot be read, so there
		// is nothing more that can safely be collected.
		e.log.WarnContext(ctx, "image content unreadable, not collected", "id", id, "err", resolveErr)
		return items, nil
	}
	deleted, err := e.collect(ctx, img, recs)
	return append(items, deleted...), err
}

// byName reports whether arg named rec (rather than its ID).
func byName(arg string, rec meta.Image) bool {
	if Dangling(rec) {
		return false
	}
	r, err := ref.Parse(arg)
	if err != nil {
		return false
	}
	return rec.Name == r.String() || (r.IsDigested() && rec.Target.Digest == r.Digest())
}

// sameImage returns the records of image id.
func sameImage(recs []meta.Image, id digest.Digest) []meta.Image {
	var out []meta.Image
	for _, r := range recs {
		if r.Config == id {
			out = append(out, r)
		}
	}
	return out
}

// singleReference is docker's isSingleReference: at most one tag, and
// every name in one repository.
func singleReference(names []meta.Image) bool {
	tags, repo := 0, ""
	for _, n := range names {
		if Dangling(n) {
			continue
		}
		r, err := ref.Parse(n.Name)
		if err != nil {
			return false
		}
		if r.Tag() != "" && !r.IsDigested() {
			tags++
		}
		if repo != "" && repo != r.Repository() {
			return false
		}
		repo = r.Repository()
	}
	return tags <= 1
}

// untagged is what removing the name rec takes with it, as docker's
// reference store would: rec itself and, when rec is a tag and no other
// tag of its repository names the image, the repository's digest names of
// the image — the records, and for a pulled tag the digest name docker
// keeps beside it (returned with an empty Target: a line to print).
func untagged(names []meta.Image, rec meta.Image) []meta.Image {
	out := []meta.Image{rec}
	if Dangling(rec) {
		return out
	}
	r, err := ref.Parse(rec.Name)
	if err != nil || r.IsDigested() {
		return out
	}
	for _, n := range names {
		o, err := ref.Parse(n.Name)
		if err == nil && n.Name != rec.Name && !o.IsDigested() && o.Repository() == r.Repository() {
			return out // another tag of the repository keeps its digests
		}
	}
	return append(out, digestNames(names, rec, r)...)
}

// digestNames are the digest names of rec's repository for its image: the
// digest-only records, and the pulled tag's own repo digest.
func digestNames(names []meta.Image, rec meta.Image, r ref.Reference) []meta.Image {
	var out []meta.Image
	canonical := r.Repository() + "@" + rec.Target.Digest.String()
	listed := false
	for _, n := range names {
		o, err := ref.Parse(n.Name)
		if err == nil && o.IsDigested() && o.Tag() == "" && o.Repository() == r.Repository() {
			out = append(out, n)
			listed = listed || n.Name == canonical
		}
	}
	if _, tagged := rec.Labels[labelTagged]; !listed && !tagged {
		out = append(out, meta.Image{Name: canonical})
	}
	return out
}

// collect deletes what img used and nothing in keep (the remaining image
// records) or a live lease still needs: its layer snapshots, top down,
// then its blobs. It returns the snapshots deleted, as docker lists layers.
func (e *Engine) collect(ctx context.Context, img image.Image, keep []meta.Image) ([]ImageDeleteItem, error) {
	blobs, chains := map[digest.Digest]bool{}, map[digest.Digest]bool{}
	mark := func(i image.Image) {
		for _, d := range append([]digest.Digest{i.Target.Digest, i.Manifest.Digest, i.Config.Digest}, descDigests(i)...) {
			blobs[d] = true
		}
		for _, c := range i.ChainIDs {
			chains[c] = true
		}
	}
	for _, rec := range keep {
		blobs[rec.Target.Digest], blobs[rec.Config] = true, true
		if other, err := e.ResolveImage(ctx, rec); err == nil {
			mark(other)
		}
	}
	var leases []meta.Lease
	if err := e.withMeta(ctx, func(db *meta.DB) (err error) {
		leases, err = db.Leases(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	for _, l := range leases {
		if leaseDead(l, time.Now()) {
			continue
		}
		for _, d := range l.Resources {
			blobs[d] = true
			if desc, err := e.content.Info(ctx, d); err == nil {
				target := img.Target
				target.Digest, target.Size = desc.Digest, desc.Size
				target.MediaType = ""
				if other, err := image.Resolve(ctx, e.content, target, e.platform); err == nil {
					mark(other)
				}
			}
		}
	}
	var items []ImageDeleteItem
	for i := len(img.ChainIDs) - 1; i >= 0; i-- {
		c := img.ChainIDs[i]
		if chains[c] {
			break // another image stands on this layer and on those below
		}
		err := e.snapshots.Remove(ctx, c.String())
		if errdefs.IsNotFound(err) {
			continue
		}
		if errdefs.IsFailedPrecondition(err) {
			break // a snapshot (a view, an unpack in progress) stands on it
		}
		if err != nil {
			return items, fmt.Errorf("remove layer %s: %w", c, err)
		}
		items = append(items, ImageDeleteItem{Deleted: c})
	}
	for _, d := range append([]digest.Digest{img.Target.Digest, img.Manifest.Digest, img.Config.Digest}, descDigests(img)...) {
		if blobs[d] {
			continue
		}
		blobs[d] = true // once
		if err := e.content.Delete(ctx, d); err != nil && !errdefs.IsNotFound(err) {
			return items, err
		}
	}
	return items, nil
}

// descDigests returns the digests of img's layers.
func descDigests(img image.Image) []digest.Digest {
	out := make([]digest.Digest, len(img.Layers))
	for i, l := range img.Layers {
		out[i] = l.Digest
	}
	return out
}
