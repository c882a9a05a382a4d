package meta

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Lease protects content from garbage collection while it is not yet
// referenced by an image record: a pull takes one before its first
// download and deletes it once the image is recorded. A lease left by a
// crashed pull expires, so that its blobs become collectable.
type Lease struct {
	ID        string
	Resources []digest.Digest
	Created   time.Time
	Expires   time.Time // zero: never
}

// Expired reports whether the lease has expired at now.
func (l Lease) Expired(now time.Time) bool {
	return !l.Expires.IsZero() && now.After(l.Expires)
}

// PutLease creates the lease id, or replaces its resources and expiry.
func (tx *Tx) PutLease(id string, resources []digest.Digest, expires time.Time) error {
	if id == "" {
		return fmt.Errorf("lease with no id: %w", errdefs.ErrInvalidArgument)
	}
	for _, d := range resources {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("lease %s: resource %q: %v: %w", id, d, err, errdefs.ErrInvalidArgument)
		}
	}
	leases, err := tx.bucket(bucketLeases)
	if err != nil {
		return err
	}
	created := []byte(time.Now().UTC().Format(time.RFC3339Nano))
	if old := leases.Bucket([]byte(id)); old != nil {
		if c := old.Get(keyCreatedAt); c != nil {
			created = append([]byte(nil), c...)
		}
		if err := leases.DeleteBucket([]byte(id)); err != nil {
			return fmt.Errorf("replace lease %s: %w", id, err)
		}
	}
	lb, err := leases.CreateBucket([]byte(id))
	if err != nil {
		return fmt.Errorf("put lease %s: %w", id, err)
	}
	if err := lb.Put(keyCreatedAt, created); err != nil {
		return fmt.Errorf("put lease %s: %w", id, err)
	}
	if !expires.IsZero() {
		if err := lb.Put(keyExpires, []byte(expires.UTC().Format(time.RFC3339Nano))); err != nil {
			return fmt.Errorf("put lease %s: %w", id, err)
		}
	}
	cb, err := lb.CreateBucket(bucketContent)
	if err != nil {
		return fmt.Errorf("put lease %s: %w", id, err)
	}
	for _, d := range resources {
		if err := cb.Put([]byte(d), nil); err != nil {
			return fmt.Errorf("put lease %s: %w", id, err)
		}
	}
	return nil
}

// DeleteLease removes the lease id; errdefs.ErrNotFound if there is none.
func (tx *Tx) DeleteLease(id string) error {
	leases, err := tx.bucket(bucketLeases)
	if err != nil {
		return err
	}
	if leases.Bucket([]byte(id)) == nil {
		return fmt.Errorf("lease %s: %w", id, errdefs.ErrNotFound)
	}
	if err := leases.DeleteBucket([]byte(id)); err != nil {
		return fmt.Errorf("delete lease %s: %w", id, err)
	}
	return nil
}

// Leases returns every lease, expired ones included, sorted by id.
func (tx *Tx) Leases() ([]Lease, error) {
	leases, err := tx.bucket(bucketLeases)
	if err != nil {
		return nil, err
	}
	var out []Lease
	err = leases.ForEachBucket(func(k []byte) error {
		l, err := decodeLease(string(k), leases.Bucket(k))
		if err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

func decodeLease(id string, b *bolt.Bucket) (Lease, error) {
	l := Lease{ID: id}
	var err error
	if l.Created, err = time.Parse(time.RFC3339Nano, string(b.Get(keyCreatedAt))); err != nil {
		return Lease{}, fmt.Errorf("lease %s: createdat: %v: %w", id, err, errdefs.ErrFailedPrecondition)
	}
	if v := b.Get(keyExpires); v != nil {
		if l.Expires, err = time.Parse(time.RFC3339Nano, string(v)); err != nil {
			return Lease{}, fmt.Errorf("lease %s: expires: %v: %w", id, err, errdefs.ErrFailedPrecondition)
		}
	}
	if cb := b.Bucket(bucketContent); cb != nil {
		err = cb.ForEach(func(k, _ []byte) error {
			l.Resources = append(l.Resources, digest.Digest(k))
			return nil
		})
	}
	return l, err
}

// PutLease creates or replaces a lease; see Tx.PutLease.
func (db *DB) PutLease(ctx context.Context, id string, resources []digest.Digest, expires time.Time) error {
	return db.Update(ctx, func(tx *Tx) error { return tx.PutLease(id, resources, expires) })
}

// DeleteLease removes the lease id; errdefs.ErrNotFound if there is none.
func (db *DB) DeleteLease(ctx context.Context, id string) error {
	return db.Update(ctx, func(tx *Tx) error { return tx.DeleteLease(id) })
}

// Leases returns every lease, expired ones included, sorted by id.
func (db *DB) Leases(ctx context.Context) (ls []Lease, err error) {
	err = db.View(ctx, func(tx *Tx) error {
		ls, err = tx.Leases()
		return err
	})
	return ls, err
}
