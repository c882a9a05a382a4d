package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/mount"
	bolt "go.etcd.io/bbolt"
)

// Bucket names of the schema drawn in the package doc.
const (
	bucketV1        = "v1"
	bucketSnapshots = "snapshots"
)

// record is one snapshot's metadata, stored as JSON under its key.
type record struct {
	ID      uint64            `json:"id"`
	Kind    Kind              `json:"kind"`
	Parent  string            `json:"parent,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
	Size    int64             `json:"size,omitempty"` // committed snapshots: usage at commit
}

// backend is what a driver adds to the shared metadata and directory code.
type backend interface {
	// fill populates a new snapshot's directory dir (which holds an empty
	// fs) before it is renamed into place. parents are the fs dirs of the
	// parent chain, nearest first.
	fill(ctx context.Context, dir string, kind Kind, parents []string) error
	// mounts describes how to mount the snapshot id.
	mounts(id uint64, kind Kind, parents []string) []mount.Mount
}

func (s *store) dir(id uint64) string {
	return filepath.Join(s.root, "snapshots", strconv.FormatUint(id, 10))
}

func (s *store) fsDir(id uint64) string { return filepath.Join(s.dir(id), "fs") }

func snapshots(tx *bolt.Tx) *bolt.Bucket {
	return tx.Bucket([]byte(bucketV1)).Bucket([]byte(bucketSnapshots))
}

func get(tx *bolt.Tx, key string) (record, error) {
	v := snapshots(tx).Get([]byte(key))
	if v == nil {
		return record{}, fmt.Errorf("snapshot %s: %w", key, errdefs.ErrNotFound)
	}
	return decode([]byte(key), v)
}

func decode(k, v []byte) (record, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, fmt.Errorf("snapshot %s: bad record: %w: %w", k, err, errdefs.ErrFailedPrecondition)
	}
	return r, nil
}

func put(tx *bolt.Tx, key string, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return snapshots(tx).Put([]byte(key), v)
}

// chain returns the ids of parent and its ancestors, nearest first.
func chain(tx *bolt.Tx, parent string) ([]uint64, error) {
	var ids []uint64
	for p := parent; p != ""; {
		r, err := get(tx, p)
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		if r.Kind != KindCommitted {
			return nil, fmt.Errorf("parent %s is %s, not committed: %w", p, r.Kind, errdefs.ErrFailedPrecondition)
		}
		ids = append(ids, r.ID)
		p = r.Parent
	}
	return ids, nil
}

func (s *store) fsDirs(ids []uint64) []string {
	dirs := make([]string, len(ids))
	for i, id := range ids {
		dirs[i] = s.fsDir(id)
	}
	return dirs
}

// create makes a new snapshot. Its directory is built under a locked new-*
// outside any transaction (the naive driver copies the parent's whole tree
// there), then renamed to <id> inside the short transaction that records
// it. A crash leaves either nothing or a directory that cleanup removes; a
// process that loses a race for key removes its own new-*.
func (s *store) create(ctx context.Context, kind Kind, key, parent string) (_ []mount.Mount, err error) {
	if key == "" {
		return nil, fmt.Errorf("create snapshot: empty key: %w", errdefs.ErrInvalidArgument)
	}
	var parents []uint64
	err = s.view(ctx, func(tx *bolt.Tx) error {
		if snapshots(tx).Get([]byte(key)) != nil {
			return fmt.Errorf("snapshot %s: %w", key, errdefs.ErrAlreadyExists)
		}
		parents, err = chain(tx, parent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	tmp, lock, err := s.newBuildDir()
	if err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	defer lock.unlock()
	renamed := uint64(0)
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
			if renamed != 0 { // renamed, but the transaction did not commit
				os.RemoveAll(s.dir(renamed))
			}
		}
	}()
	if err := os.Mkdir(filepath.Join(tmp, "fs"), 0o755); err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	if err := s.backend.fill(ctx, tmp, kind, s.fsDirs(parents)); err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	var id uint64
	err = s.update(ctx, func(tx *bolt.Tx) error {
		if snapshots(tx).Get([]byte(key)) != nil {
			return fmt.Errorf("snapshot %s: %w", key, errdefs.ErrAlreadyExists)
		}
		again, err := chain(tx, parent) // the parent may have gone meanwhile
		if err != nil {
			return err
		}
		if len(again) != len(parents) || (len(parents) > 0 && again[0] != parents[0]) {
			return fmt.Errorf("parent %s changed while preparing %s: %w", parent, key, errdefs.ErrConflict)
		}
		if id, err = tx.Bucket([]byte(bucketV1)).NextSequence(); err != nil {
			return err
		}
		r := record{ID: id, Kind: kind, Parent: parent, Created: time.Now().UTC()}
		if err := put(tx, key, r); err != nil {
			return err
		}
		if err := os.Rename(tmp, s.dir(id)); err != nil {
			return err
		}
		renamed = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	return s.backend.mounts(id, kind, s.fsDirs(parents)), nil
}

// Prepare makes the active snapshot key on top of parent and returns its mounts.
func (s *store) Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, KindActive, key, parent)
}

// View makes the read-only snapshot key of parent and returns its mounts.
func (s *store) View(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, KindView, key, parent)
}

// Mounts returns the mounts of the active snapshot or view key.
func (s *store) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	var r record
	var parents []uint64
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		if r, err = get(tx, key); err != nil {
			return err
		}
		parents, err = chain(tx, r.Parent)
		return err
	})
	if err != nil {
		return nil, err
	}
	if r.Kind == KindCommitted {
		return nil, fmt.Errorf("mounts of committed snapshot %s: view it instead: %w", key, errdefs.ErrFailedPrecondition)
	}
	return s.backend.mounts(r.ID, r.Kind, s.fsDirs(parents)), nil
}

// Stat describes the snapshot key.
func (s *store) Stat(ctx context.Context, key string) (Info, error) {
	var r record
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		r, err = get(tx, key)
		return err
	})
	if err != nil {
		return Info{}, err
	}
	return r.info(key), nil
}

func (r record) info(key string) Info {
	return Info{Key: key, Parent: r.Parent, Kind: r.Kind, Created: r.Created, Labels: r.Labels}
}

// Commit turns the active snapshot key into the committed snapshot name.
func (s *store) Commit(ctx context.Context, name, key string) error {
	if name == "" {
		return fmt.Errorf("commit %s: empty name: %w", key, errdefs.ErrInvalidArgument)
	}
	var r record
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		r, err = get(tx, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("commit %s: %w", key, err)
	}
	size, err := diskUsage(ctx, s.fsDir(r.ID))
	if err != nil {
		return fmt.Errorf("commit %s: %w", key, err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		r, err := get(tx, key)
		if err != nil {
			return err
		}
		if r.Kind != KindActive {
			return fmt.Errorf("snapshot %s is %s, not active: %w", key, r.Kind, errdefs.ErrFailedPrecondition)
		}
		if snapshots(tx).Get([]byte(name)) != nil {
			return fmt.Errorf("snapshot %s: %w", name, errdefs.ErrAlreadyExists)
		}
		if err := snapshots(tx).Delete([]byte(key)); err != nil {
			return err
		}
		r.Kind, r.Size, r.Created = KindCommitted, size, time.Now().UTC()
		return put(tx, name, r)
	})
	if err != nil {
		return fmt.Errorf("commit %s as %s: %w", key, name, err)
	}
	return nil
}

// Remove deletes the snapshot key unless it is another snapshot's parent.
// The record goes and the directory is renamed to rm-<id> in one short
// transaction; the files are deleted after it, under the directory's lock,
// so that cleanup in another process leaves them to us.
func (s *store) Remove(ctx context.Context, key string) (err error) {
	var r record
	err = s.view(ctx, func(tx *bolt.Tx) (err error) {
		r, err = get(tx, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	lock, err := s.waitLockDir(ctx, s.dir(r.ID))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	if lock != nil {
		defer lock.unlock()
	}
	rm := filepath.Join(s.root, "snapshots", "rm-"+strconv.FormatUint(r.ID, 10))
	renamed := false
	err = s.update(ctx, func(tx *bolt.Tx) error {
		again, err := get(tx, key)
		if err != nil {
			return err
		}
		if again.ID != r.ID {
			return fmt.Errorf("snapshot %s was replaced meanwhile: %w", key, errdefs.ErrConflict)
		}
		err = snapshots(tx).ForEach(func(k, v []byte) error {
			c, err := decode(k, v)
			if err != nil {
				return err
			}
			if c.Parent == key {
				return fmt.Errorf("snapshot %s is the parent of %s: %w", key, k, errdefs.ErrFailedPrecondition)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := snapshots(tx).Delete([]byte(key)); err != nil {
			return err
		}
		if lock == nil {
			return nil // its directory was lost already; drop the record
		}
		if err := os.Rename(s.dir(r.ID), rm); err != nil {
			return err
		}
		renamed = true
		return nil
	})
	if err != nil {
		if renamed { // the transaction did not commit: put the directory back
			os.Rename(rm, s.dir(r.ID))
		}
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	if !renamed {
		return nil
	}
	// Committed: the snapshot is gone. A failure here leaves an rm-* dir
	// that the next open removes.
	if err := os.RemoveAll(rm); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	return nil
}

// Walk calls fn for every snapshot, outside any transaction, so fn may call
// back into the snapshotter.
func (s *store) Walk(ctx context.Context, fn func(Info) error) error {
	var infos []Info
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return snapshots(tx).ForEach(func(k, v []byte) error {
			r, err := decode(k, v)
			if err != nil {
				return err
			}
			infos = append(infos, r.info(string(k)))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("walk snapshots: %w", err)
	}
	for _, i := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// Usage returns the disk bytes of the snapshot's own files: measured at
// commit for a committed snapshot, now for the others.
func (s *store) Usage(ctx context.Context, key string) (int64, error) {
	var r record
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		r, err = get(tx, key)
		return err
	})
	if err != nil {
		return 0, err
	}
	if r.Kind == KindCommitted {
		return r.Size, nil
	}
	return diskUsage(ctx, s.fsDir(r.ID))
}

// UpperDir returns where the active snapshot key's changes live.
func (s *store) UpperDir(ctx context.Context, key string) (string, error) {
	var r record
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		r, err = get(tx, key)
		return err
	})
	if err != nil {
		return "", err
	}
	if r.Kind != KindActive {
		return "", fmt.Errorf("upper dir of %s snapshot %s: %w", r.Kind, key, errdefs.ErrFailedPrecondition)
	}
	return s.fsDir(r.ID), nil
}

// diskUsage sums the blocks of the files under dir, counting each inode once.
func diskUsage(ctx context.Context, dir string) (int64, error) {
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := statT(fi)
		if !ok || seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		total += st.Blocks * 512
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return total, nil
}
