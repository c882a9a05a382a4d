package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/ref"
	"github.com/berth-dev/berth/registry"
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
	// Current and Total count the layer's compressed bytes while Status
	// is "Downloading" or "Extracting" (both 0 otherwise). Such byte
	// updates repeat the status, at most about ten times a second per
	// layer; a renderer that prints lines prints only changes of Status.
	Current, Total int64
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
	// The lease dies with this process (see lease.go); 24 h is the backstop.
	lease := newLeaseID("pull")
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
	fetchedLayers, err := e.fetchAndUnpack(ctx, r, img, lease, progress)
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
	e.Event(ctx, "image", "pull", r.Familiar(), map[string]string{"name": r.Familiar()})
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

// layerFetch is how the unpacker learns about one layer's download.
type layerFetch struct {
	// stream receives one value once the download has opened its ingest:
	// the pipe to unpack from as the bytes arrive, or nil when the layer is
	// to be unpacked from the content store after its download.
	stream chan *io.PipeReader
	// done receives the download's outcome (nil for a layer not fetched).
	done chan error
}

// fetchAndUnpack downloads the layers the store lacks, a few at a time,
// and unpacks each into its snapshot as soon as the layers beneath it are
// in. It reports whether it downloaded anything.
//
// Streaming: when a download starts (it holds a download slot and has
// opened its ingest) while the unpacker is waiting for that very layer,
// the HTTP stream is teed into the content writer and into an io.Pipe the
// unpacker decompresses and applies as the bytes arrive, so the layer is
// unpacked as it downloads. Layers further up download into the store in
// parallel and are unpacked from it when their turn comes; one whose turn
// comes while it is still downloading waits for its download (the bytes
// already written are in the ingest only, which the pipe cannot replay).
// A resumed ingest still streams: the registry sends the blob from its
// start, and the prefix the ingest already holds goes to the unpacker only.
//
// If the unpack side fails, the pipe is closed, the download detaches
// from it and the pull is cancelled: the ingest is kept for the next pull
// and the half-unpacked snapshot removed. If the download fails, the pipe
// fails the unpack with the download's error, with the same outcome.
func (e *Engine) fetchAndUnpack(ctx context.Context, r ref.Reference, img image.Image, lease string, progress func(Progress)) (bool, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := len(img.Layers)
	ls := make([]layerFetch, n)
	needed := make([]bool, n)
	// staged[i] is set for a layer that unpacks into a staging directory
	// (see pullstage.go): with overlay, every missing layer above the
	// lowest missing one.
	staged := make([]chan stageResult, n)
	stageRoot := e.stagingRoot()
	direct := -1 // the lowest layer to unpack
	var fetched bool
	var mu sync.Mutex
	want := -1 // the layer the unpacker waits for; guarded by mu
	for i, l := range img.Layers {
		ls[i] = layerFetch{stream: make(chan *io.PipeReader, 1), done: make(chan error, 1)}
		has := e.hasSnapshot(ctx, img.ChainIDs[i])
		if !has {
			if direct < 0 {
				direct = i
			} else if stageRoot != "" {
				staged[i] = make(chan stageResult, 1)
			}
		}
		if has {
			progress(Progress{ID: short(l.Digest), Status: "Already exists"})
		} else if _, err := e.content.Info(ctx, l.Digest); err != nil {
			needed[i] = true
			if !fetched && staged[i] == nil {
				want = i
			}
			fetched = true
			progress(Progress{ID: short(l.Digest), Status: "Pulling fs layer"})
			continue
		}
		ls[i].stream <- nil
		ls[i].done <- nil
	}
	sem := make(chan struct{}, parallelDownloads)
	stageSem := make(chan struct{}, stageWorkers())
	var wg sync.WaitGroup
	for i, l := range img.Layers {
		if !needed[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			decided := false
			attach := func() *io.PipeWriter {
				mu.Lock()
				defer mu.Unlock()
				decided = true
				if want != i {
					ls[i].stream <- nil
					return nil
				}
				pr, pw := io.Pipe()
				ls[i].stream <- pr
				return pw
			}
			var err error
			select {
			case sem <- struct{}{}:
				m := newMeter(short(l.Digest), "Downloading", l.Size, progress)
				m.emit()
				err = e.download(ctx, r, l, attach, m)
				<-sem
			case <-ctx.Done():
				err = context.Cause(ctx)
			}
			if !decided {
				ls[i].stream <- nil
			}
			if err == nil {
				progress(Progress{ID: short(l.Digest), Status: "Download complete", Current: l.Size, Total: l.Size})
			} else {
				cancel(err)
			}
			ls[i].done <- err
		}()
	}
	var stageDir string
	var stagers sync.WaitGroup
	for i := range staged {
		if staged[i] == nil {
			continue
		}
		if stageDir == "" {
			if err := os.MkdirAll(stageRoot, 0o700); err == nil {
				cleanStaging(stageRoot)
			}
			stageDir = filepath.Join(stageRoot, lease)
			if err := os.Mkdir(stageDir, 0o700); err != nil {
				stageDir = ""
				for j := range staged {
					staged[j] = nil // unpack one after the other, as vfs does
				}
				break
			}
			defer os.RemoveAll(stageDir)
		}
		stagers.Add(1)
		go func() {
			defer stagers.Done()
			res := e.stageLayer(ctx, img, i, ls[i], stageDir, stageSem, progress)
			if res.err != nil {
				cancel(res.err)
			}
			staged[i] <- res
		}()
	}
	var unpackErr error
	i := 0
	for ; i < n && unpackErr == nil; i++ {
		if staged[i] != nil {
			res := <-staged[i]
			unpackErr = res.err
			if unpackErr == nil && res.dir != "" {
				unpackErr = e.commitStaged(ctx, img, i, res.dir)
				if unpackErr == nil {
					progress(Progress{ID: short(img.Layers[i].Digest), Status: "Pull complete"})
				}
			}
		} else {
			mu.Lock()
			want = i
			mu.Unlock()
			unpackErr = e.unpackNext(ctx, img, i, ls[i], progress)
		}
		if unpackErr != nil {
			cancel(unpackErr)
		}
	}
	// Downloads still running after a failure may have opened a pipe to
	// an unpacker that will never read it: close those so they finish.
	for ; i < n; i++ {
		if staged[i] != nil {
			continue // its stager reads its stream
		}
		lf := ls[i]
		go func() {
			if pr := <-lf.stream; pr != nil {
				pr.CloseWithError(context.Cause(ctx))
			}
		}()
	}
	wg.Wait()
	stagers.Wait()
	if unpackErr != nil && ctx.Err() != nil {
		// Report why the pull was cancelled, not that another layer saw it.
		unpackErr = context.Cause(ctx)
	}
	return fetched, unpackErr
}

// errUnpacked detaches a download from the pipe of an unpacker that has
// read all it needs (or failed); the download goes on into the store.
var errUnpacked = errors.New("unpacker detached")

// unpackNext unpacks layer i once its download allows: from the pipe
// its download streams into, or from the store after the download.
func (e *Engine) unpackNext(ctx context.Context, img image.Image, i int, lf layerFetch, progress func(Progress)) error {
	l := img.Layers[i]
	pr := <-lf.stream
	if pr == nil {
		if err := <-lf.done; err != nil {
			return err
		}
		if e.hasSnapshot(ctx, img.ChainIDs[i]) {
			return nil
		}
		blob, err := e.content.Open(ctx, l.Digest)
		if err != nil {
			return err
		}
		defer blob.Close()
		m := newMeter(short(l.Digest), "Extracting", l.Size, progress)
		m.emit()
		if err := e.unpackLayerFrom(ctx, img, i, m.reader(blob), nil); err != nil {
			return err
		}
		progress(Progress{ID: short(l.Digest), Status: "Pull complete"})
		return nil
	}
	// Streaming: the meter stays quiet while the download reports; once
	// the download completes, what remains is reported as Extracting.
	m := newMeter(short(l.Digest), "Extracting", l.Size, progress)
	m.quiet = true
	finish := func() error {
		pr.CloseWithError(errUnpacked) // trailing bytes go to the store only
		err := <-lf.done
		if err == nil {
			m.quiet = false
			m.emit()
		}
		return err
	}
	if e.hasSnapshot(ctx, img.ChainIDs[i]) {
		return finish()
	}
	err := e.unpackLayerFrom(ctx, img, i, m.reader(pr), finish)
	if err != nil {
		pr.CloseWithError(errUnpacked)
		if ctx.Err() != nil {
			// A failed download cancels the pull with its error: say that.
			return context.Cause(ctx)
		}
		return err
	}
	progress(Progress{ID: short(l.Digest), Status: "Pull complete"})
	return nil
}

// download stores one layer blob, resuming an ingest left by an
// interrupted pull. attach is called once the ingest is open; when it
// returns a pipe, every byte of the blob is also written to it, from the
// first (a resumed ingest's prefix is read from the registry again), and
// the pipe is closed with the download's outcome. A pipe whose reader has
// gone is dropped; the download goes on.
func (e *Engine) download(ctx context.Context, r ref.Reference, l ocispec.Descriptor, attach func() *io.PipeWriter, m *meter) (err error) {
	w, err := e.content.Writer(ctx, l.Digest.String(), l)
	if errdefs.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("layer %s: %w", short(l.Digest), err)
	}
	defer w.Close()
	t := &tee{m: m}
	if pw := attach(); pw != nil {
		t.tap = pw
		defer func() {
			if err != nil {
				pw.CloseWithError(err)
			} else {
				pw.Close()
			}
		}()
	}
	rc, err := e.registry.Fetch(ctx, r.String(), l)
	if err != nil {
		return err
	}
	defer rc.Close()
	src := readerCtx(ctx, rc)
	if off := w.Offset(); off > 0 {
		// The ingest holds these bytes already: only the unpacker wants them.
		if _, err := io.CopyN(t, src, off); err != nil {
			return fmt.Errorf("layer %s: resume at %d: %w", short(l.Digest), off, err)
		}
	}
	t.w = w
	if _, err := io.Copy(t, src); err != nil {
		if errors.Is(err, registry.ErrVerify) && w.Offset() >= l.Size {
			// All the bytes came and they are wrong: a resumed pull
			// must not keep them. (A stream cut short stays resumable.)
			w.Abort()
		}
		return fmt.Errorf("layer %s: %w", short(l.Digest), err)
	}
	if err := w.Commit(ctx); err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("layer %s: %w", short(l.Digest), err)
	}
	return nil
}

// tee writes to the content writer w (when set) and to the unpacker's
// pipe (while it reads), counting bytes on the meter.
type tee struct {
	w   io.Writer
	tap *io.PipeWriter
	m   *meter
}

func (t *tee) Write(p []byte) (int, error) {
	if t.w != nil {
		if n, err := t.w.Write(p); err != nil {
			return n, err
		}
	}
	if t.tap != nil {
		if _, err := t.tap.Write(p); err != nil {
			t.tap = nil // the unpacker is done or gone; the store still wants the bytes
		}
	}
	t.m.add(len(p))
	return len(p), nil
}

func (e *Engine) hasSnapshot(ctx context.Context, chain digest.Digest) bool {
	_, err := e.snapshots.Stat(ctx, chain.String())
	return err == nil
}

// unpackLayer applies layer i, from its blob in the content store, onto
// the snapshot of the layers beneath it and commits the result under its
// chain ID, checking the uncompressed bytes against the config's diff ID
// on the way.
func (e *Engine) unpackLayer(ctx context.Context, img image.Image, i int) error {
	blob, err := e.content.Open(ctx, img.Layers[i].Digest)
	if err != nil {
		return err
	}
	defer blob.Close()
	return e.unpackLayerFrom(ctx, img, i, blob, nil)
}

// unpackLayerFrom is unpackLayer reading the compressed layer from src.
// beforeCommit, if set, runs once the diff ID checks out and must succeed
// for the snapshot to be committed (a streamed layer waits there for its
// download). On any error the snapshot is removed.
func (e *Engine) unpackLayerFrom(ctx context.Context, img image.Image, i int, src io.Reader, beforeCommit func() error) error {
	mode := archive.OverlayWhiteouts
	if e.driver == "vfs" {
		mode = archive.NaiveWhiteouts
	}
	return e.intoSnapshot(ctx, img, i, func(dir string) error {
		if err := e.applyVerified(ctx, img, i, src, dir, mode); err != nil {
			return err
		}
		if beforeCommit != nil {
			return beforeCommit()
		}
		return nil
	})
}

// intoSnapshot prepares an "extract-" snapshot for layer i on top of the
// layers beneath it, lets fill put the layer's files into its upper dir,
// and commits it under the layer's chain ID, or removes it if anything
// fails. A layer another pull committed meanwhile counts as done.
func (e *Engine) intoSnapshot(ctx context.Context, img image.Image, i int, fill func(upper string) error) (err error) {
	parent := ""
	if i > 0 {
		parent = img.ChainIDs[i-1].String()
	}
	key := "extract-" + randomHex(6) + "-" + img.ChainIDs[i].Encoded()
	if _, err := e.snapshots.Prepare(ctx, key, parent); err != nil {
		return fmt.Errorf("prepare snapshot for layer %s: %w", short(img.Layers[i].Digest), err)
	}
	defer func() {
		if err != nil {
			e.snapshots.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	upper, err := e.snapshots.UpperDir(ctx, key)
	if err != nil {
		return err
	}
	if err := fill(upper); err != nil {
		return err
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
