package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOptions tune Pull.
type PullOptions struct {
	Platform *ocispec.Platform // default: the engine's
	Progress func(Progress)    // optional; called from several goroutines
}

// Progress is one step of a pull, per layer, in Docker's words.
type Progress struct {
	ID     string // the layer's short digest, as docker pull prints it
	Status string // "Pulling fs layer", "Downloading", "Download complete", "Extracting", "Pull complete", "Already exists"
}

// PullResult is what a pull stored.
type PullResult struct {
	Ref        ref.Reference
	Image      image.Image
	Downloaded bool // false if everything was already here
}

// parallelDownloads is how many layers download at once (Docker's default).
const parallelDownloads = 3

// Pull fetches name for the platform into the stores and records it:
//
//	resolve → lease → manifests and config → layers (in parallel), each
//	unpacked as soon as it and the layers beneath it are in → record
//
// Every blob is verified against its digest before anything uses it, and
// every unpacked layer against its diff ID. The record is the last write,
// so an interrupted pull leaves no image, only blobs and snapshots the next
// pull reuses.
func (e *Engine) Pull(ctx context.Context, name string, o PullOptions) (PullResult, error) {
	r, err := ref.Parse(name)
	if err != nil {
		return PullResult{}, err
	}
	platform := e.platform
	if o.Platform != nil {
		platform = image.Normalize(*o.Platform)
	}
	progress := o.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	target, err := e.registry.Resolve(ctx, r.String())
	if err != nil {
		return PullResult{}, err
	}
	lease := "pull-" + randomHex(8)
	defer e.withMeta(context.WithoutCancel(ctx), func(db *meta.DB) error { return db.DeleteLease(ctx, lease) })
	if err := e.withMeta(ctx, func(db *meta.DB) error {
		return db.PutLease(ctx, lease, []digest.Digest{target.Digest}, time.Now().Add(24*time.Hour))
	}); err != nil {
		return PullResult{}, err
	}
	img, fetchedMeta, err := e.fetchImage(ctx, r, target, platform)
	if err != nil {
		return PullResult{}, err
	}
	fetchedLayers, err := e.fetchAndUnpack(ctx, r, img, progress)
	if err != nil {
		return PullResult{}, err
	}
	rec := meta.Image{Name: r.String(), Target: target, Config: img.Config.Digest}
	if image.IsIndex(target.MediaType) {
		rec.Platform = &platform
	}
	if err := e.withMeta(ctx, func(db *meta.DB) error { return db.PutImage(ctx, rec) }); err != nil {
		return PullResult{}, err
	}
	return PullResult{Ref: r, Image: img, Downloaded: fetchedMeta || fetchedLayers}, nil
}

// fetchImage stores target and, for an index, the platform's manifest,
// then the config, and resolves the image from the store. It reports
// whether it had to download anything.
func (e *Engine) fetchImage(ctx context.Context, r ref.Reference, target ocispec.Descriptor, platform ocispec.Platform) (image.Image, bool, error) {
	fetched := false
	desc := target
	var data []byte
	for depth := 0; ; depth++ {
		if depth == 4 {
			return image.Image{}, fetched, fmt.Errorf("indexes nested too deep: %w", errdefs.ErrInvalidArgument)
		}
		var got bool
		var err error
		if data, got, err = e.blob(ctx, r, desc, image.MaxManifestSize); err != nil {
			return image.Image{}, fetched, err
		}
		fetched = fetched || got
		next, isIndex, err := nextManifest(desc, data, platform)
		if err != nil {
			return image.Image{}, fetched, err
		}
		if !isIndex {
			break
		}
		desc = next
	}
	m, err := image.ParseManifest(data)
	if err != nil {
		return image.Image{}, fetched, err
	}
	_, got, err := e.blob(ctx, r, m.Config, image.MaxConfigSize)
	if err != nil {
		return image.Image{}, fetched, err
	}
	img, err := image.Resolve(ctx, e.content, target, platform)
	return img, fetched || got, err
}

// blob returns a JSON blob (manifest, index, config) of at most max bytes
// from the store, fetching and storing it first if the store lacks it.
func (e *Engine) blob(ctx context.Context, r ref.Reference, desc ocispec.Descriptor, max int64) ([]byte, bool, error) {
	if data, err := content.ReadBlob(ctx, e.content, desc, max); err == nil {
		return data, false, nil
	}
	var data []byte
	var err error
	if image.IsManifest(desc.MediaType) || image.IsIndex(desc.MediaType) || desc.MediaType == "" {
		data, err = e.registry.FetchManifest(ctx, r.String(), desc)
	} else {
		var rc io.ReadCloser
		if rc, err = e.registry.Fetch(ctx, r.String(), desc); err == nil {
			data, err = io.ReadAll(io.LimitReader(rc, max+1))
			rc.Close()
		}
	}
	if err != nil {
		return nil, false, err
	}
	if int64(len(data)) > max {
		return nil, false, fmt.Errorf("%s is larger than %d bytes: %w", desc.Digest, max, errdefs.ErrInvalidArgument)
	}
	err = content.WriteBlob(ctx, e.content, desc.Digest.String(), bytes.NewReader(data), desc)
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return nil, false, err
	}
	return data, true, nil
}

// nextManifest says where an index leads for platform; ok is false when
// data is already a manifest.
func nextManifest(desc ocispec.Descriptor, data []byte, platform ocispec.Platform) (ocispec.Descriptor, bool, error) {
	mt := desc.MediaType
	if mt == "" {
		var err error
		if mt, err = image.MediaTypeOf(data); err != nil {
			return ocispec.Descriptor{}, false, err
		}
	}
	if !image.IsIndex(mt) {
		return ocispec.Descriptor{}, false, nil
	}
	idx, err := image.ParseIndex(data)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	next, err := image.Select(idx, platform)
	return next, err == nil, err
}

// fetchAndUnpack downloads the layers the store lacks, a few at a time,
// and unpacks each into its snapshot as soon as it and every layer below
// it are in. It reports whether it downloaded anything.
func (e *Engine) fetchAndUnpack(ctx context.Context, r ref.Reference, img image.Image, progress func(Progress)) (bool, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := len(img.Layers)
	done := make([]chan error, n) // closed (after one send) when layer i's blob is in
	needed := make([]bool, n)
	var fetched bool
	for i, l := range img.Layers {
		done[i] = make(chan error, 1)
		if e.hasSnapshot(ctx, img.ChainIDs[i]) {
			progress(Progress{ID: short(l.Digest), Status: "Already exists"})
			done[i] <- nil
			continue
		}
		if _, err := e.content.Info(ctx, l.Digest); err == nil {
			done[i] <- nil
			continue
		}
		needed[i] = true
		fetched = true
		progress(Progress{ID: short(l.Digest), Status: "Pulling fs layer"})
	}
	sem := make(chan struct{}, parallelDownloads)
	var wg sync.WaitGroup
	for i, l := range img.Layers {
		if !needed[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				done[i] <- context.Cause(ctx)
				return
			}
			defer func() { <-sem }()
			progress(Progress{ID: short(l.Digest), Status: "Downloading"})
			err := e.download(ctx, r, l)
			if err == nil {
				progress(Progress{ID: short(l.Digest), Status: "Download complete"})
			} else {
				cancel(err)
			}
			done[i] <- err
		}()
	}
	var unpackErr error
	for i := 0; i < n && unpackErr == nil; i++ {
		if err := <-done[i]; err != nil {
			unpackErr = err
			break
		}
		if e.hasSnapshot(ctx, img.ChainIDs[i]) {
			continue
		}
		progress(Progress{ID: short(img.Layers[i].Digest), Status: "Extracting"})
		if err := e.unpackLayer(ctx, img, i); err != nil {
			unpackErr = err
			cancel(err)
			break
		}
		progress(Progress{ID: short(img.Layers[i].Digest), Status: "Pull complete"})
	}
	wg.Wait()
	return fetched, unpackErr
}

// download stores one layer blob, resuming an ingest left by an
// interrupted pull.
func (e *Engine) download(ctx context.Context, r ref.Reference, l ocispec.Descriptor) error {
	rc, err := e.registry.Fetch(ctx, r.String(), l)
	if err != nil {
		return err
	}
	defer rc.Close()
	err = content.WriteBlob(ctx, e.content, l.Digest.String(), rc, l)
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("layer %s: %w", short(l.Digest), err)
	}
	return nil
}

func (e *Engine) hasSnapshot(ctx context.Context, chain digest.Digest) bool {
	_, err := e.snapshots.Stat(ctx, chain.String())
	return err == nil
}

// unpackLayer applies layer i onto the snapshot of the layers beneath it
// and commits the result under its chain ID, checking the uncompressed
// bytes against the config's diff ID on the way.
func (e *Engine) unpackLayer(ctx context.Context, img image.Image, i int) (err error) {
	l := img.Layers[i]
	parent := ""
	if i > 0 {
		parent = img.ChainIDs[i-1].String()
	}
	key := "extract-" + randomHex(6) + "-" + img.ChainIDs[i].Encoded()
	if _, err := e.snapshots.Prepare(ctx, key, parent); err != nil {
		return fmt.Errorf("prepare snapshot for layer %s: %w", short(l.Digest), err)
	}
	defer func() {
		if err != nil {
			e.snapshots.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	dir, err := e.snapshots.UpperDir(ctx, key)
	if err != nil {
		return err
	}
	blob, err := e.content.Open(ctx, l.Digest)
	if err != nil {
		return err
	}
	defer blob.Close()
	plain, _, err := archive.DecompressStream(blob)
	if err != nil {
		return fmt.Errorf("layer %s: %w", short(l.Digest), err)
	}
	defer plain.Close()
	diffID := img.ConfigFile.RootFS.DiffIDs[i]
	verifier := diffID.Algorithm().Digester()
	mode := archive.OverlayWhiteouts
	if e.driver == "vfs" {
		mode = archive.NaiveWhiteouts
	}
	if _, err := archive.Apply(ctx, dir, io.TeeReader(plain, verifier.Hash()), archive.ApplyOptions{Whiteouts: mode}); err != nil {
		return fmt.Errorf("unpack layer %s: %w", short(l.Digest), err)
	}
	// The tar may end before its padding: hash what the decompressor has left.
	if _, err := io.Copy(verifier.Hash(), plain); err != nil {
		return fmt.Errorf("layer %s: %w", short(l.Digest), err)
	}
	if got := verifier.Digest(); got != diffID {
		return fmt.Errorf("layer %s unpacks to %s, but the image config says %s: %w", short(l.Digest), got, diffID, errdefs.ErrFailedPrecondition)
	}
	err = e.snapshots.Commit(ctx, img.ChainIDs[i].String(), key)
	if errdefs.IsAlreadyExists(err) {
		// Another pull committed the same layer meanwhile: use theirs.
		e.snapshots.Remove(context.WithoutCancel(ctx), key)
		return nil
	}
	return err
}

// short is the 12-hex form of a digest docker pull prints.
func short(d digest.Digest) string {
	h := d.Encoded()
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
