package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// Image is a named image: a name pointing at a manifest or an index.
type Image struct {
	// Name is the full normalized reference (ref.Reference.String()),
	// "docker.io/library/busybox:latest". meta stores it as given.
	Name string
	// Target is the manifest or index the name points at; its digest is
	// what Docker shows as the repo digest.
	Target ocispec.Descriptor
	// Config is the digest of the image config chosen for this machine:
	// the image ID.
	Config digest.Digest
	// Platform is the platform Target was resolved for, when Target is an
	// index; nil otherwise.
	Platform *ocispec.Platform
	// Created is when the name was first stored, Updated when it last
	// changed. PutImage sets them.
	Created, Updated time.Time
	Labels           map[string]string
}

// imageRecord is the JSON stored under v1/images/<name>.
type imageRecord struct {
	Target   ocispec.Descriptor `json:"target"`
	Config   digest.Digest      `json:"config,omitempty"`
	Platform *ocispec.Platform  `json:"platform,omitempty"`
	Created  time.Time          `json:"created"`
	Updated  time.Time          `json:"updated"`
	Labels   map[string]string  `json:"labels,omitempty"`
}

func validate(img Image) error {
	if img.Name == "" {
		return fmt.Errorf("image with no name: %w", errdefs.ErrInvalidArgument)
	}
	if err := img.Target.Digest.Validate(); err != nil {
		return fmt.Errorf("image %s: target digest %q: %v: %w", img.Name, img.Target.Digest, err, errdefs.ErrInvalidArgument)
	}
	if img.Config != "" {
		if err := img.Config.Validate(); err != nil {
			return fmt.Errorf("image %s: config digest %q: %v: %w", img.Name, img.Config, err, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// PutImage creates or replaces the image img.Name. Created is kept from the
// existing record (or set to now for a new one) unless img sets it; Updated
// is set to now.
func (tx *Tx) PutImage(img Image) error {
	if err := validate(img); err != nil {
		return err
	}
	images, err := tx.bucket(bucketImages)
	if err != nil {
		return err
	}
	targets, err := tx.bucket(bucketTargets)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	if old, err := tx.GetImage(img.Name); err == nil {
		if img.Created.IsZero() {
			img.Created = old.Created
		}
		if old.Target.Digest != img.Target.Digest {
			if err := unindex(targets, old.Target.Digest, img.Name); err != nil {
				return err
			}
		}
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	if img.Created.IsZero() {
		img.Created = now
	}
	rec := imageRecord{
		Target: img.Target, Config: img.Config, Platform: img.Platform,
		Created: img.Created, Updated: now, Labels: img.Labels,
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode image %s: %w", img.Name, err)
	}
	if err := images.Put([]byte(img.Name), b); err != nil {
		return fmt.Errorf("put image %s: %w", img.Name, err)
	}
	idx, err := targets.CreateBucketIfNotExists([]byte(img.Target.Digest))
	if err != nil {
		return fmt.Errorf("index image %s: %w", img.Name, err)
	}
	return idx.Put([]byte(img.Name), nil)
}

// GetImage returns the image name; errdefs.ErrNotFound if there is none.
func (tx *Tx) GetImage(name string) (Image, error) {
	images, err := tx.bucket(bucketImages)
	if err != nil {
		return Image{}, err
	}
	v := images.Get([]byte(name))
	if v == nil {
		return Image{}, fmt.Errorf("image %s: %w", name, errdefs.ErrNotFound)
	}
	return decodeImage(name, v)
}

func decodeImage(name string, v []byte) (Image, error) {
	var rec imageRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return Image{}, fmt.Errorf("decode image %s: %v: %w", name, err, errdefs.ErrFailedPrecondition)
	}
	return Image{
		Name: name, Target: rec.Target, Config: rec.Config, Platform: rec.Platform,
		Created: rec.Created, Updated: rec.Updated, Labels: rec.Labels,
	}, nil
}

// ListImages returns every image, sorted by name.
func (tx *Tx) ListImages() ([]Image, error) {
	images, err := tx.bucket(bucketImages)
	if err != nil {
		return nil, err
	}
	var out []Image
	err = images.ForEach(func(k, v []byte) error {
		img, err := decodeImage(string(k), v)
		if err != nil {
			return err
		}
		out = append(out, img)
		return nil
	})
	return out, err
}

// ImagesByTarget returns every image whose target is dgst, sorted by name.
// One name means removing it deletes the image; more mean it only untags.
func (tx *Tx) ImagesByTarget(dgst digest.Digest) ([]Image, error) {
	targets, err := tx.bucket(bucketTargets)
	if err != nil {
		return nil, err
	}
	idx := targets.Bucket([]byte(dgst))
	if idx == nil {
		return nil, nil
	}
	var out []Image
	err = idx.ForEach(func(k, _ []byte) error {
		img, err := tx.GetImage(string(k))
		if err != nil {
			return fmt.Errorf("index v1/targets/%s: %w", dgst, err)
		}
		out = append(out, img)
		return nil
	})
	return out, err
}

// DeleteImage removes the image name; errdefs.ErrNotFound if there is none.
// The content it pointed at stays; collecting it is the caller's decision.
func (tx *Tx) DeleteImage(name string) error {
	img, err := tx.GetImage(name)
	if err != nil {
		return err
	}
	images, err := tx.bucket(bucketImages)
	if err != nil {
		return err
	}
	targets, err := tx.bucket(bucketTargets)
	if err != nil {
		return err
	}
	if err := unindex(targets, img.Target.Digest, name); err != nil {
		return err
	}
	if err := images.Delete([]byte(name)); err != nil {
		return fmt.Errorf("delete image %s: %w", name, err)
	}
	return nil
}

// unindex removes name from v1/targets/<dgst>, and the bucket once empty.
func unindex(targets *bolt.Bucket, dgst digest.Digest, name string) error {
	idx := targets.Bucket([]byte(dgst))
	if idx == nil {
		return nil
	}
	if err := idx.Delete([]byte(name)); err != nil {
		return fmt.Errorf("unindex image %s: %w", name, err)
	}
	if k, _ := idx.Cursor().First(); k == nil {
		if err := targets.DeleteBucket([]byte(dgst)); err != nil {
			return fmt.Errorf("unindex image %s: %w", name, err)
		}
	}
	return nil
}

// PutImage creates or replaces one image record; see Tx.PutImage.
func (db *DB) PutImage(ctx context.Context, img Image) error {
	return db.Update(ctx, func(tx *Tx) error { return tx.PutImage(img) })
}

// GetImage returns the image name; errdefs.ErrNotFound if there is none.
func (db *DB) GetImage(ctx context.Context, name string) (img Image, err error) {
	err = db.View(ctx, func(tx *Tx) error {
		img, err = tx.GetImage(name)
		return err
	})
	return img, err
}

// ListImages returns every image, sorted by name.
func (db *DB) ListImages(ctx context.Context) (imgs []Image, err error) {
	err = db.View(ctx, func(tx *Tx) error {
		imgs, err = tx.ListImages()
		return err
	})
	return imgs, err
}

// ImagesByTarget returns every image whose target is dgst, sorted by name.
func (db *DB) ImagesByTarget(ctx context.Context, dgst digest.Digest) (imgs []Image, err error) {
	err = db.View(ctx, func(tx *Tx) error {
		imgs, err = tx.ImagesByTarget(dgst)
		return err
	})
	return imgs, err
}

// DeleteImage removes the image name; errdefs.ErrNotFound if there is none.
func (db *DB) DeleteImage(ctx context.Context, name string) error {
	return db.Update(ctx, func(tx *Tx) error { return tx.DeleteImage(name) })
}
