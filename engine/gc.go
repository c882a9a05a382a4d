package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/meta"
	"github.com/berth-dev/berth/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gcGrace is how long an unpack snapshot ("extract-…") is presumed to
// belong to a pull still running. Pull keeps no lock on it, so age is the
// only sign of a dead one. Tests that know no pull runs shorten it.
var gcGrace = 10 * time.Minute

// extractPrefix starts the keys of the snapshots Pull unpacks layers into.
const extractPrefix = "extract-"

// GCReport is what a garbage collection removed.
type GCReport struct {
	Blobs     []digest.Digest // content blobs deleted
	Snapshots []string        // snapshots removed: committed layers and stale unpacks
	Ingests   int             // abandoned content ingests removed
	Leases    []string        // expired leases deleted
	// Reclaimed is the disk space freed, in bytes: the blobs' sizes and
	// the snapshots' usage.
	Reclaimed int64
}

// liveSet is what GC must keep.
type liveSet struct {
	blobs  map[digest.Digest]bool
	chains map[string]bool // committed snapshot names (chain IDs)
}

// GC removes what no image record and no live lease references: content
// blobs, committed layer snapshots no image's chain needs, the unpack
// snapshots ("extract-…") and content ingests killed pulls left behind,
// and dead leases: expired, or held by a process that is gone.
//
// Everything reachable from a record's target or from a digest an
// unexpired lease names is kept (indexes, every manifest of theirs that is
// stored, configs, layers, and the chain IDs a config's diff IDs make), so
// that a pull in progress — it leases its target before its first
// download — keeps what it has fetched and unpacked so far. Ingests are
// removed only when no writer holds their lock; unpack snapshots only
// when older than gcGrace. Blobs and snapshots that appeared after GC
// started are never collected, and candidates are checked against a
// second marking just before deletion, to narrow the window in which a
// pull that starts meanwhile could lose something it found in the store.
func (e *Engine) GC(ctx context.Context) (GCReport, error) {
	var rep GCReport
	start := time.Now()
	if err := e.dropExpiredLeases(ctx, &rep); err != nil {
		return rep, err
	}
	if root := e.stagingRoot(); root != "" {
		cleanStaging(root) // layers staged by pulls that were killed
	}
	live, err := e.mark(ctx)
	if err != nil {
		return rep, err
	}
	// Candidates: blobs and snapshots nothing references.
	var blobs []content.Info
	if err := e.content.Walk(ctx, func(i content.Info) error {
		if !live.blobs[i.Digest] && i.CreatedAt.Before(start) {
			blobs = append(blobs, i)
		}
		return nil
	}); err != nil {
		return rep, err
	}
	stale, committed, err := e.snapshotCandidates(ctx, live, start)
	if err != nil {
		return rep, err
	}
	// Mark again: a pull may have leased its target in between.
	if live, err = e.mark(ctx); err != nil {
		return rep, err
	}
	for _, key := range stale {
		e.removeSnapshot(ctx, key, &rep)
	}
	e.removeCommitted(ctx, committed, live, &rep)
	for _, b := range blobs {
		if live.blobs[b.Digest] {
			continue
		}
		err := e.content.Delete(ctx, b.Digest)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return rep, err
		}
		rep.Blobs = append(rep.Blobs, b.Digest)
		rep.Reclaimed += b.Size
	}
	// An ingest whose lock is free has no writer: the store's own test.
	n, err := e.content.CleanIngests(ctx, 0)
	rep.Ingests = n
	if err != nil {
		return rep, err
	}
	return rep, nil
}

// dropExpiredLeases deletes the leases whose time is up or whose holding
// process is gone (leaseDead).
func (e *Engine) dropExpiredLeases(ctx context.Context, rep *GCReport) error {
	return e.withMeta(ctx, func(db *meta.DB) error {
		return db.Update(ctx, func(tx *meta.Tx) error {
			ls, err := tx.Leases()
			if err != nil {
				return err
			}
			now := time.Now()
			for _, l := range ls {
				if !leaseDead(l, now) {
					continue
				}
				if err := tx.DeleteLease(l.ID); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
				rep.Leases = append(rep.Leases, l.ID)
			}
			return nil
		})
	})
}

// mark collects what the image records and the live leases reach.
func (e *Engine) mark(ctx context.Context) (liveSet, error) {
	live := liveSet{blobs: map[digest.Digest]bool{}, chains: map[string]bool{}}
	var roots []digest.Digest
	err := e.withMeta(ctx, func(db *meta.DB) error {
		return db.View(ctx, func(tx *meta.Tx) error {
			recs, err := tx.ListImages()
			if err != nil {
				return err
			}
			for _, r := range recs {
				roots = append(roots, r.Target.Digest, r.Config)
			}
			ls, err := tx.Leases()
			if err != nil {
				return err
			}
			now := time.Now()
			for _, l := range ls {
				if !leaseDead(l, now) {
					roots = append(roots, l.Resources...)
				}
			}
			return nil
		})
	})
	if err != nil {
		return live, err
	}
	for _, d := range roots {
		if err := e.markBlob(ctx, d, live, 0); err != nil {
			return live, err
		}
	}
	return live, nil
}

// markBlob marks d and, when it is a stored index, manifest or config,
// what it references. Blobs that are missing or not JSON are leaves.
func (e *Engine) markBlob(ctx context.Context, d digest.Digest, live liveSet, depth int) error {
	if d == "" || live.blobs[d] {
		return nil
	}
	live.blobs[d] = true
	if depth > 8 {
		return nil
	}
	info, err := e.content.Info(ctx, d)
	if err != nil || info.Size > image.MaxConfigSize {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return nil // absent, or a layer: nothing below it
	}
	data, err := content.ReadBlob(ctx, e.content, ocispec.Descriptor{Digest: d, Size: info.Size}, image.MaxConfigSize)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return nil // unreadable (corrupt): keep it, look no further
	}
	// A config (whose own "config" field would pass for a manifest's)
	// gives the chain IDs of the layers' snapshots.
	if c, err := image.ParseConfig(data); err == nil && len(c.RootFS.DiffIDs) > 0 {
		for _, ch := range image.ChainIDs(c.RootFS.DiffIDs) {
			live.chains[ch.String()] = true
		}
		return nil
	}
	mt, err := image.MediaTypeOf(data)
	if err != nil {
		return nil // some other blob
	}
	switch {
	case image.IsIndex(mt):
		idx, err := image.ParseIndex(data)
		if err != nil {
			return nil
		}
		for _, m := range idx.Manifests {
			if err := e.markBlob(ctx, m.Digest, live, depth+1); err != nil {
				return err
			}
		}
	case image.IsManifest(mt):
		m, err := image.ParseManifest(data)
		if err != nil {
			return nil
		}
		if err := e.markBlob(ctx, m.Config.Digest, live, depth+1); err != nil {
			return err
		}
		for _, l := range m.Layers {
			live.blobs[l.Digest] = true
		}
	}
	return nil
}

// snapshotCandidates sorts the snapshots GC may remove: unpack snapshots
// older than gcGrace (stale), and committed ones that nothing marks or
// stands on (committed). Every other active snapshot and view is kept,
// and with it the chain beneath it.
func (e *Engine) snapshotCandidates(ctx context.Context, live liveSet, start time.Time) (stale, committed []string, err error) {
	all := map[string]snapshot.Info{}
	if err := e.snapshots.Walk(ctx, func(i snapshot.Info) error {
		all[i.Key] = i
		return nil
	}); err != nil {
		return nil, nil, err
	}
	keep := map[string]bool{}
	var protect func(name string)
	protect = func(name string) {
		for name != "" && !keep[name] {
			keep[name] = true
			name = all[name].Parent
		}
	}
	for k, i := range all {
		switch {
		case i.Kind == snapshot.KindCommitted:
			if live.chains[k] || !i.Created.Before(start) {
				protect(k)
			}
		case strings.HasPrefix(k, extractPrefix) && time.Since(i.Created) > gcGrace:
			stale = append(stale, k)
		default:
			keep[k] = true
			protect(i.Parent)
		}
	}
	for k, i := range all {
		if i.Kind == snapshot.KindCommitted && !keep[k] {
			committed = append(committed, k)
		}
	}
	return stale, committed, nil
}

// removeCommitted removes the committed snapshots names, children before
// parents, skipping any the second marking found live (and those below).
func (e *Engine) removeCommitted(ctx context.Context, names []string, live liveSet, rep *GCReport) {
	left := map[string]bool{}
	for _, n := range names {
		if !live.chains[n] {
			left[n] = true
		}
	}
	for progress := true; progress && len(left) > 0; {
		progress = false
		for n := range left {
			usage, _ := e.snapshots.Usage(ctx, n)
			err := e.snapshots.Remove(ctx, n)
			if errdefs.IsFailedPrecondition(err) {
				continue // a child first, in a later round
			}
			delete(left, n)
			progress = true
			if err == nil {
				rep.Snapshots = append(rep.Snapshots, n)
				rep.Reclaimed += usage
			}
		}
	}
}

// removeSnapshot removes one snapshot and counts it, measuring it first.
func (e *Engine) removeSnapshot(ctx context.Context, key string, rep *GCReport) {
	usage, _ := e.snapshots.Usage(ctx, key)
	if err := e.snapshots.Remove(ctx, key); err != nil {
		if !errdefs.IsNotFound(err) {
			e.log.WarnContext(ctx, "gc: remove snapshot", "key", key, "err", err)
		}
		return
	}
	rep.Snapshots = append(rep.Snapshots, key)
	rep.Reclaimed += usage
}

// String summarises the report for logs.
func (r GCReport) String() string {
	return fmt.Sprintf("%d blobs, %d snapshots, %d ingests, %d leases, %d bytes",
		len(r.Blobs), len(r.Snapshots), r.Ingests, len(r.Leases), r.Reclaimed)
}
