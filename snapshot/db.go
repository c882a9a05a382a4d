package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/errdefs"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"
)

// DefaultTimeout is how long an operation waits for other processes to
// release the metadata database before it fails with errdefs.ErrUnavailable.
const DefaultTimeout = 10 * time.Second

// Option changes how a snapshotter is opened.
type Option func(*options)

type options struct {
	timeout time.Duration
}

// WithTimeout sets how long every operation waits for the metadata
// database's lock (DefaultTimeout otherwise).
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// store is the driver-independent half of a snapshotter: the metadata
// database and the snapshot directories. It keeps nothing open between
// calls: every operation opens the bbolt file, runs one short transaction
// and closes it (see "Many processes" in the package doc).
type store struct {
	root    string
	dbPath  string
	timeout time.Duration
	backend backend
	// sem admits one goroutine of this process to the database at a time,
	// so that they queue here rather than poll each other's flock.
	sem    chan struct{}
	closed atomic.Bool
}

func openStore(root string, b backend, opts []Option) (*store, error) {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(filepath.Join(root, "snapshots"), 0o700); err != nil {
		return nil, fmt.Errorf("open snapshots %s: %w", root, err)
	}
	s := &store{
		root:    root,
		dbPath:  filepath.Join(root, "metadata.db"),
		timeout: o.timeout,
		backend: b,
		sem:     make(chan struct{}, 1),
	}
	ctx := context.Background()
	// The buckets exist but in a store's first opening: look under a
	// shared lock first, and write (two fdatasyncs) only when they don't.
	ready := false
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v1 := tx.Bucket([]byte(bucketV1))
		ready = v1 != nil && v1.Bucket([]byte(bucketSnapshots)) != nil
		return nil
	})
	if err != nil || !ready { // a missing database cannot be viewed: make it
		err = s.run(ctx, true, false, func(tx *bolt.Tx) error {
			v1, err := tx.CreateBucketIfNotExists([]byte(bucketV1))
			if err != nil {
				return err
			}
			_, err = v1.CreateBucketIfNotExists([]byte(bucketSnapshots))
			return err
		})
	}
	if err == nil {
		err = s.cleanup(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("open snapshots %s: %w", root, err)
	}
	return s, nil
}

// Close marks the snapshotter closed; later calls fail. There is nothing
// to release, since no call keeps the database open. Closing twice is fine.
func (s *store) Close() error {
	s.closed.Store(true)
	return nil
}

// view runs fn in a read-only transaction on the database, opened for the
// call with a shared lock, so that readers in other processes run at once.
func (s *store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.run(ctx, false, true, fn)
}

// update runs fn in a read-write transaction on the database, opened for
// the call with the exclusive lock. fn must be quick: every other berth
// process waits for it.
func (s *store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.run(ctx, true, true, fn)
}

// run opens the database for one transaction, waiting for the lock until
// the store's timeout or ctx's deadline, whichever is sooner. With schema,
// a file without the buckets openStore makes is an error.
func (s *store) run(ctx context.Context, write, schema bool, fn func(tx *bolt.Tx) error) (err error) {
	if s.closed.Load() {
		return fmt.Errorf("snapshotter %s is closed: %w", s.root, errdefs.ErrFailedPrecondition)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(s.timeout)
	timedOut := s.unavailable
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
		timedOut = func() error {
			return fmt.Errorf("open snapshot metadata %s: %w", s.dbPath, context.DeadlineExceeded)
		}
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return timedOut()
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		return timedOut()
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = s.corrupt(p)
		}
	}()
	db, err := bolt.Open(s.dbPath, 0o600, &bolt.Options{Timeout: wait, ReadOnly: !write})
	if err != nil {
		var perr *fs.PathError
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return timedOut()
		case !errors.As(err, &perr):
			return s.corrupt(err)
		}
		return fmt.Errorf("open snapshot metadata %s: %w", s.dbPath, err)
	}
	// An error closing the file is not reported: the transaction has
	// committed or rolled back by then, and its callers act on which.
	defer db.Close()
	do := db.View
	if write {
		do = db.Update
	}
	return do(func(tx *bolt.Tx) error {
		if !schema {
			return fn(tx)
		}
		v1 := tx.Bucket([]byte(bucketV1))
		if v1 == nil || v1.Bucket([]byte(bucketSnapshots)) == nil {
			return s.corrupt("no v1/snapshots bucket")
		}
		return fn(tx)
	})
}

func (s *store) unavailable() error {
	return fmt.Errorf("open snapshot metadata %s: locked by another berth process for more than %v: %w",
		s.dbPath, s.timeout, errdefs.ErrUnavailable)
}

func (s *store) corrupt(cause any) error {
	return fmt.Errorf("snapshot metadata %s is corrupt (%v): %w", s.dbPath, cause, errdefs.ErrFailedPrecondition)
}

// dirLock is an flock(2) held on a snapshot directory by the process
// building or removing it. The kernel drops it when the process dies, which
// is how cleanup tells a crash's leftovers from another process's work.
type dirLock struct{ f *os.File }

// lockDir takes dir's lock without waiting. It fails with
// errdefs.ErrUnavailable if another process holds it, and with an
// fs.ErrNotExist error if dir is gone, including when it was removed
// between being opened and being locked.
func lockDir(dir string) (*dirLock, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: in use by another process: %w", dir, errdefs.ErrUnavailable)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	// Locked, but perhaps no longer dir: cleanup in another process may
	// have removed it between our open and our flock.
	fi, ferr := f.Stat()
	pfi, perr := os.Stat(dir)
	if ferr != nil || perr != nil || !os.SameFile(fi, pfi) {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, fs.ErrNotExist)
	}
	return &dirLock{f: f}, nil
}

// waitLockDir is lockDir waiting up to the store's timeout for another
// process to finish its work on dir (a create that has just renamed it into
// place, or a concurrent Remove).
func (s *store) waitLockDir(ctx context.Context, dir string) (*dirLock, error) {
	deadline := time.Now().Add(s.timeout)
	for {
		l, err := lockDir(dir)
		if err == nil || !errors.Is(err, errdefs.ErrUnavailable) || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (l *dirLock) unlock() { l.f.Close() }

// newBuildDir makes and locks a new-* directory to build a snapshot in. It
// retries when cleanup in another process removed the directory before it
// could be locked.
func (s *store) newBuildDir() (string, *dirLock, error) {
	for range 5 {
		tmp, err := os.MkdirTemp(filepath.Join(s.root, "snapshots"), "new-")
		if err != nil {
			return "", nil, err
		}
		l, err := lockDir(tmp)
		if err == nil {
			return tmp, l, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errdefs.ErrUnavailable) {
			os.RemoveAll(tmp)
			return "", nil, err
		}
	}
	return "", nil, fmt.Errorf("make a build directory: removed under us repeatedly: %w", errdefs.ErrConflict)
}

// cleanup removes what crashes left behind: new-* and rm-* directories, and
// <id> directories the metadata does not know. A directory whose lock
// another process holds is that process's work in progress and stays.
//
// The listing comes before the metadata is read: a directory is renamed to
// <id> only inside the transaction that records it, so an <id> listed
// before that read and unknown to it is not recorded, and never will be.
func (s *store) cleanup(ctx context.Context) error {
	dir := filepath.Join(s.root, "snapshots")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		return snapshots(tx).ForEach(func(k, v []byte) error {
			r, err := decode(k, v)
			if err != nil {
				return err
			}
			known[strconv.FormatUint(r.ID, 10)] = true
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		_, numErr := strconv.ParseUint(name, 10, 64)
		leftover := strings.HasPrefix(name, "new-") || strings.HasPrefix(name, "rm-") || (numErr == nil && !known[name])
		if !leftover {
			continue
		}
		p := filepath.Join(dir, name)
		l, err := lockDir(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errdefs.ErrUnavailable) {
				continue // gone already, or another process's work in progress
			}
			return fmt.Errorf("clean up %s: %w", p, err)
		}
		err = os.RemoveAll(p)
		l.unlock()
		if err != nil {
			return fmt.Errorf("clean up %s: %w", p, err)
		}
	}
	return nil
}
