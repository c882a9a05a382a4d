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
// # Many processes
//
// berth has no daemon: every command opens the snapshotter on the same root,
// and several may run at once. bbolt locks its file with flock(2) for as long
// as it is open (exclusive for writers, shared for readers), so the
// snapshotter keeps nothing open between calls:
//
//   - every call opens metadata.db for one short transaction and closes it,
//     waiting for the lock up to the timeout (WithTimeout, DefaultTimeout);
//     a call that cannot have it in time fails with errdefs.ErrUnavailable
//     naming the file. Goroutines of one process queue in the process.
//   - no transaction spans file work. A snapshot is built (the naive driver
//     copies its parent's tree) in a new-* directory outside any
//     transaction; one short transaction then checks again that the key is
//     free and the parent unchanged, records it and renames new-* to <id>.
//     Of two processes preparing the same key one wins and the other gets
//     errdefs.ErrAlreadyExists, its new-* removed; of two committing the
//     same name, the loser gets ErrAlreadyExists and keeps its active
//     snapshot, to remove or commit elsewhere. A parent removed while its
//     child was being built fails the child with ErrNotFound (ErrConflict if
//     a new one took its name): Remove checks for children in the same
//     transaction that deletes the record and renames <id> to rm-<id>, and
//     deletes the files after it. Commit measures usage before its
//     transaction.
//   - a new-* being built and an <id> being removed carry an flock(2) of
//     their own, held by the process doing the work and dropped by the
//     kernel when it dies. Opening a snapshotter removes the new-* and rm-*
//     directories, and any <id> directory that the metadata does not know,
//     whose lock it can take: what a crash left behind. Another live
//     process's work in progress is locked, and stays. (A lock, not an age:
//     a copy may take longer than any grace period, and a crash's leftovers
//     go at the next open, not a minute later.) The builder locks new-*
//     right after making it and, should a cleanup have removed it in that
//     instant, makes another.
//
// Close ends a snapshotter's use; there is nothing to release.
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
	// Close ends the use of the snapshotter: later calls fail. No call keeps
	// the metadata database open, so there is nothing else to release;
	// closing twice is harmless.
	Close() error
}
