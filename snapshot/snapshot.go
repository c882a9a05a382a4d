// Package snapshot stores the filesystem layers of images and containers as
// snapshots, and describes how to mount them.
//
// The vocabulary is containerd's (core/snapshots/snapshotter.go), smaller:
//
//   - A committed snapshot is an immutable layer, named by the caller (the
//     image code uses chain IDs). Its parent is the layer below it.
//   - An active snapshot is a writable layer on top of a committed parent
//     (or of nothing), named by a key. Prepare makes one; Commit turns it
//     into a committed snapshot under a new name. Active and committed
//     snapshots never convert into each other otherwise.
//   - A view is a read-only snapshot of a committed parent, for reading an
//     image without changing it.
//
// Unpacking an image is Prepare(key, parentChainID), archive.Apply into
// UpperDir(key), Commit(chainID, key), layer after layer. Running a
// container is Prepare(containerID, topChainID) and mounting what it
// returns. A snapshotter never mounts anything itself: it returns
// []mount.Mount, and the caller mounts them.
//
// Whiteouts are not the snapshotter's business: the overlay driver's upper
// directories take overlayfs whiteouts (archive.OverlayWhiteouts), the
// naive driver's full copies take deletions (archive.NaiveWhiteouts).
//
// # Layout on disk, shared by both drivers
//
//	<root>/metadata.db           bbolt, schema below
//	<root>/snapshots/<id>/fs     the snapshot's files (overlay: its upper dir)
//	<root>/snapshots/<id>/work   overlay work dir (overlay driver only)
//	<root>/snapshots/new-*       a snapshot being built; renamed to <id>
//	<root>/snapshots/rm-*        a snapshot being removed
//
// Opening a snapshotter removes new-* and rm-* directories and any <id>
// directory that the metadata does not know: what a crash left behind.
//
// # Metadata schema (bbolt)
//
//	v1/                          bucket; its sequence numbers snapshot ids
//	└── snapshots/               bucket
//	    └── <key or name>        JSON {id, kind, parent, created, labels, size}
//
// Update this drawing whenever the schema changes, and add a migration.
package snapshot

import (
	"context"
	"time"

	"github.com/berth-dev/berth/mount"
)

// Kind is the state of a snapshot.
type Kind uint8

// The kinds of snapshot.
const (
	KindView Kind = iota + 1
	KindActive
	KindCommitted
)

// String names k.
func (k Kind) String() string {
	switch k {
	case KindView:
		return "view"
	case KindActive:
		return "active"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

// Info describes a snapshot.
type Info struct {
	Key     string // key of an active snapshot or view; name of a committed one
	Parent  string // name of the committed parent, "" for none
	Kind    Kind
	Created time.Time
	Labels  map[string]string
}

// Snapshotter stores snapshots. Every implementation passes the conformance
// suite in snapshot/snapshottest.
type Snapshotter interface {
	// Stat describes the snapshot key.
	Stat(ctx context.Context, key string) (Info, error)
	// Mounts returns the mounts of the active snapshot or view key.
	Mounts(ctx context.Context, key string) ([]mount.Mount, error)
	// Prepare makes a writable active snapshot key on top of the committed
	// parent ("" for an empty one) and returns its mounts.
	Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error)
	// View makes a read-only snapshot key of the committed parent and
	// returns its mounts.
	View(ctx context.Context, key, parent string) ([]mount.Mount, error)
	// Commit turns the active snapshot key into the committed snapshot name.
	// Its mounts must be unmounted first.
	Commit(ctx context.Context, name, key string) error
	// Remove deletes the snapshot key. It refuses, with
	// errdefs.ErrFailedPrecondition, a snapshot that is another's parent.
	Remove(ctx context.Context, key string) error
	// Walk calls fn for every snapshot.
	Walk(ctx context.Context, fn func(Info) error) error
	// Usage returns the bytes of disk the snapshot's own files use.
	Usage(ctx context.Context, key string) (int64, error)
	// UpperDir returns the directory where the active snapshot key's changes
	// live (the overlay upper dir, or the naive driver's copy), so that a
	// layer can be applied straight into it without mounting anything.
	UpperDir(ctx context.Context, key string) (string, error)
	// Close releases the metadata database.
	Close() error
}
