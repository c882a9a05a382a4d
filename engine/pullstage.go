package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/archive"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"golang.org/x/sys/unix"
)

// Parallel unpack (overlay only). A layer's overlay upper dir holds only
// its own changes, whiteouts included, and does not depend on the files of
// the layers beneath it; only the snapshot that records it needs its parent
// committed. So while the lowest missing layer unpacks into its snapshot
// (streamed as it downloads), every layer above it unpacks, as soon as its
// blob is in the store, into a staging directory of its own next to the
// snapshots (same filesystem), its diff ID checked as usual. When its turn
// comes, the pull prepares its snapshot on the now committed parent,
// renames the staged tree over the snapshot's empty upper dir and commits.
//
// Staging directories live in <snapshot root>/staging/<lease>/, named
// after the pull's lease: the pull removes its own at the end, and every
// pull removes those of pulls whose process is gone (a killed pull).

// stagingDirName is where a snapshot root keeps pulls' staging directories.
const stagingDirName = "staging"

// stageResult is what staging one layer produced.
type stageResult struct {
	dir string // the unpacked upper dir, to rename into the snapshot
	err error
}

// stagingRoot returns the directory staged layers go under; "" when the
// driver cannot take staged layers (vfs copies the parent's tree).
func (e *Engine) stagingRoot() string {
	if e.driver != "overlay" {
		return ""
	}
	return filepath.Join(e.root, "snapshots", e.driver, stagingDirName)
}

// cleanStaging removes the staging directories of pulls whose process has
// exited.
func cleanStaging(root string) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	now := time.Now()
	for _, ent := range ents {
		if !strings.HasPrefix(ent.Name(), "pull-") {
			continue
		}
		if _, _, ok := leaseOwner(ent.Name()); !ok {
			continue
		}
		if leaseDead(meta.Lease{ID: ent.Name(), Expires: now.Add(time.Hour)}, now) {
			os.RemoveAll(filepath.Join(root, ent.Name()))
		}
	}
}

// stageWorkers is how many layers unpack into staging directories at once.
func stageWorkers() int { return max(1, runtime.NumCPU()) }

// stageLayer unpacks layer i from the content store, once its download is
// done, into a new directory under dir.
func (e *Engine) stageLayer(ctx context.Context, img image.Image, i int, lf layerFetch, dir string, sem chan struct{}, progress func(Progress)) stageResult {
	l := img.Layers[i]
	if pr := <-lf.stream; pr != nil {
		// Not asked for (staged layers are never the awaited one), but
		// never leave a download writing to a pipe nobody reads.
		pr.CloseWithError(errUnpacked)
	}
	if err := <-lf.done; err != nil {
		return stageResult{err: err}
	}
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
	case <-ctx.Done():
		return stageResult{err: context.Cause(ctx)}
	}
	if e.hasSnapshot(ctx, img.ChainIDs[i]) {
		return stageResult{}
	}
	blob, err := e.content.Open(ctx, l.Digest)
	if err != nil {
		return stageResult{err: err}
	}
	defer blob.Close()
	upper := filepath.Join(dir, fmt.Sprintf("layer-%d", i))
	if err := os.Mkdir(upper, 0o755); err != nil {
		return stageResult{err: fmt.Errorf("stage layer %s: %w", short(l.Digest), err)}
	}
	m := newMeter(short(l.Digest), "Extracting", l.Size, progress)
	m.emit()
	if err := e.applyVerified(ctx, img, i, m.reader(blob), upper, archive.OverlayWhiteouts); err != nil {
		return stageResult{err: err}
	}
	return stageResult{dir: upper}
}

// commitStaged records the staged upper dir of layer i as its snapshot on
// top of the (committed) snapshot of the layers beneath it.
func (e *Engine) commitStaged(ctx context.Context, img image.Image, i int, staged string) error {
	if e.hasSnapshot(ctx, img.ChainIDs[i]) {
		return nil // another pull committed it meanwhile
	}
	return e.intoSnapshot(ctx, img, i, func(upper string) error {
		// rename(2) replaces an empty directory atomically (os.Rename
		// refuses an existing directory).
		if err := unix.Rename(staged, upper); err != nil {
			return fmt.Errorf("layer %s: move the staged upper dir into its snapshot: %w", short(img.Layers[i].Digest), &os.LinkError{Op: "rename", Old: staged, New: upper, Err: err})
		}
		return nil
	})
}

// applyVerified decompresses the layer blob src and applies it to dir,
// checking the uncompressed bytes against layer i's diff ID.
func (e *Engine) applyVerified(ctx context.Context, img image.Image, i int, src io.Reader, dir string, mode archive.Whiteouts) error {
	l := img.Layers[i]
	plain, _, err := archive.DecompressStream(src)
	if err != nil {
		return fmt.Errorf("layer %s: %w", short(l.Digest), err)
	}
	defer plain.Close()
	diffID := img.ConfigFile.RootFS.DiffIDs[i]
	verifier := diffID.Algorithm().Digester()
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
	return nil
}
