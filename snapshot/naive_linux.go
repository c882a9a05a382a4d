package snapshot

import (
	"context"

	"github.com/berth-dev/berth/mount"
)

// Naive is the copying ("vfs") snapshotter for where overlayfs is not
// available: an active snapshot's fs directory starts as a full copy of its
// parent's, so every snapshot holds the whole tree. Slow and large, but it
// needs nothing from the kernel beyond bind mounts.
type Naive struct {
	*store
}

var _ Snapshotter = (*Naive)(nil)

// NewNaive opens (or creates) a copying snapshotter at root. It is safe to
// use from many processes at once (see the package doc).
func NewNaive(root string, opts ...Option) (*Naive, error) {
	n := &Naive{}
	s, err := openStore(root, n, opts)
	if err != nil {
		return nil, err
	}
	n.store = s
	return n, nil
}

// fill copies the parent's tree into an active snapshot. A view needs no
// copy: it mounts its parent read-only.
func (n *Naive) fill(ctx context.Context, dir string, kind Kind, parents []string) error {
	if kind != KindActive || len(parents) == 0 {
		return nil
	}
	return copyTree(ctx, dir+"/fs", parents[0])
}

func (n *Naive) mounts(id uint64, kind Kind, parents []string) []mount.Mount {
	switch {
	case kind == KindActive:
		return []mount.Mount{{Type: "bind", Source: n.fsDir(id), Options: []string{"rw", "rbind"}}}
	case len(parents) > 0:
		return []mount.Mount{{Type: "bind", Source: parents[0], Options: []string{"ro", "rbind"}}}
	}
	return []mount.Mount{{Type: "bind", Source: n.fsDir(id), Options: []string{"ro", "rbind"}}}
}
