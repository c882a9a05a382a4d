package meta

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"runtime/debug"
	"time"

	"github.com/berth-dev/berth/errdefs"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DefaultTimeout is how long Open waits for another process to release the
// database.
const DefaultTimeout = 10 * time.Second

// schemaVersion is the minor version stored in v1/version.
const schemaVersion = 1

var (
	bucketV1      = []byte("v1")
	keyVersion    = []byte("version")
	bucketImages  = []byte("images")
	bucketTargets = []byte("targets")
	bucketLeases  = []byte("leases")
	bucketContent = []byte("content")
	keyCreatedAt  = []byte("createdat")
	keyExpires    = []byte("expires")
)

// DB is an open metadata database. Close it as soon as the work is done:
// while it is open no other process can open it.
type DB struct {
	path string
	bdb  *bolt.DB
}

// Option changes how Open opens the database.
type Option func(*bolt.Options)

// WithTimeout sets how long Open waits for the lock (DefaultTimeout
// otherwise).
func WithTimeout(d time.Duration) Option {
	return func(o *bolt.Options) { o.Timeout = d }
}

// Open opens (creating it if needed) the database at path, waiting up to
// the timeout for other processes to close it. A database still locked after
// the timeout is errdefs.ErrUnavailable; a file that is not a berth database
// or is corrupt is errdefs.ErrFailedPrecondition. Neither panics.
func Open(path string, opts ...Option) (db *DB, err error) {
	o := &bolt.Options{Timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(o)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if db != nil {
				db.bdb.Close()
			}
			db, err = nil, corrupt(path, p)
		}
	}()
	bdb, err := bolt.Open(path, 0o600, o)
	if err != nil {
		var perr *fs.PathError
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, fmt.Errorf("open metadata database %s: locked by another berth process for more than %v: %w",
				path, o.Timeout, errdefs.ErrUnavailable)
		case !errors.As(err, &perr):
			// Not the file system's error but bbolt's about the contents:
			// invalid meta pages, checksum, version, a short file.
			return nil, corrupt(path, err)
		}
		return nil, fmt.Errorf("open metadata database %s: %w", path, err)
	}
	db = &DB{path: path, bdb: bdb}
	defer func() {
		if err != nil {
			bdb.Close()
		}
	}()
	if err := db.migrate(); err != nil {
		return nil, err
	}
	return db, nil
}

func corrupt(path string, cause any) error {
	return fmt.Errorf("metadata database %s is corrupt or not a berth database (%v): %w",
		path, cause, errdefs.ErrFailedPrecondition)
}

// recoverCorrupt turns a panic inside bbolt, which is how it reacts to
// some corrupt pages, into an error. Its callers also set SetPanicOnFault,
// so that a fault on a bad mmap access (a truncated file) is a panic there
// rather than a crash of the process.
func recoverCorrupt(path string, err *error) {
	if p := recover(); p != nil {
		*err = corrupt(path, p)
	}
}

// migrate creates the schema in a new file and refuses one written by a
// newer berth. Existing current files cost a read transaction only.
func (db *DB) migrate() error {
	var version uint64
	err := db.bdb.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketV1); b != nil {
			v := b.Get(keyVersion)
			if len(v) != 8 {
				return corrupt(db.path, "bad schema version")
			}
			version = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return fmt.Errorf("metadata database %s has schema v1.%d, newer than this berth's v1.%d: %w",
			db.path, version, schemaVersion, errdefs.ErrFailedPrecondition)
	}
	return db.bdb.Update(func(tx *bolt.Tx) error {
		v1, err := tx.CreateBucketIfNotExists(bucketV1)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketImages, bucketTargets, bucketLeases} {
			if _, err := v1.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return v1.Put(keyVersion, binary.BigEndian.AppendUint64(nil, schemaVersion))
	})
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close releases the database, and with it the lock.
func (db *DB) Close() error {
	if err := db.bdb.Close(); err != nil {
		return fmt.Errorf("close metadata database %s: %w", db.path, err)
	}
	return nil
}

// Tx is a transaction, valid only inside the function given to Update or
// View.
type Tx struct {
	tx *bolt.Tx
	v1 *bolt.Bucket
}

// Update runs fn in a read-write transaction, committed if fn returns nil
// and rolled back otherwise. Use it to change several records atomically;
// keep it short, since every other berth process waits for it.
func (db *DB) Update(ctx context.Context, fn func(tx *Tx) error) error {
	return db.run(ctx, true, fn)
}

// View runs fn in a read-only transaction.
func (db *DB) View(ctx context.Context, fn func(tx *Tx) error) error {
	return db.run(ctx, false, fn)
}

func (db *DB) run(ctx context.Context, write bool, fn func(tx *Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverCorrupt(db.path, &err)
	do := db.bdb.View
	if write {
		do = db.bdb.Update
	}
	return do(func(btx *bolt.Tx) error {
		v1 := btx.Bucket(bucketV1)
		if v1 == nil {
			return corrupt(db.path, "no v1 bucket")
		}
		return fn(&Tx{tx: btx, v1: v1})
	})
}

// bucket returns v1/<name>, which migrate created.
func (tx *Tx) bucket(name []byte) (*bolt.Bucket, error) {
	b := tx.v1.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket v1/%s missing: %w", name, errdefs.ErrFailedPrecondition)
	}
	return b, nil
}
