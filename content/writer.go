package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Writer writes one blob into its ingest. It is not safe for concurrent use;
// exactly one of Commit, Close or Abort ends it (Close after Commit or Abort
// is a no-op, so `defer w.Close()` is always right).
type Writer struct {
	s        *Store
	ref      string
	dir      string
	expected ocispec.Descriptor
	lock     *os.File // flocked; closing it releases the ingest
	data     *os.File
	digester digest.Digester
	offset   int64
	done     bool
}

// Writer opens the ingest ref for a blob that must match expected. The
// digest is required; expected.Size may be 0 when the size is unknown.
//
// If another Writer (in any process) holds ref, Writer waits for it, until
// ctx is done. If the ingest holds data from an earlier Writer, the new one
// continues after it: Offset reports where, and the caller must write from
// there. If the blob is already stored, the error wraps
// errdefs.ErrAlreadyExists, which callers treat as success.
func (s *Store) Writer(ctx context.Context, ref string, expected ocispec.Descriptor) (_ *Writer, err error) {
	if ref == "" {
		return nil, fmt.Errorf("content writer: empty ref: %w", errdefs.ErrInvalidArgument)
	}
	if expected.Size < 0 {
		return nil, fmt.Errorf("content writer %q: negative size %d: %w", ref, expected.Size, errdefs.ErrInvalidArgument)
	}
	blob, err := s.blobPath(expected.Digest)
	if err != nil {
		return nil, fmt.Errorf("content writer %q: %w", ref, err)
	}
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return nil, fmt.Errorf("content writer %q: %w", ref, err)
	}
	if exists(blob) {
		return nil, fmt.Errorf("content %s: %w", expected.Digest, errdefs.ErrAlreadyExists)
	}
	dir := s.ingestDir(ref)
	lock, err := lockIngest(ctx, dir, true, true)
	if err != nil {
		return nil, fmt.Errorf("content writer %q: %w", ref, err)
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	// The Writer we waited for may have committed this very blob.
	if exists(blob) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("content %s: %w", expected.Digest, errdefs.ErrAlreadyExists)
	}
	w := &Writer{s: s, ref: ref, dir: dir, expected: expected, lock: lock, digester: expected.Digest.Algorithm().Digester()}
	if err := w.init(); err != nil {
		return nil, fmt.Errorf("content writer %q: %w", ref, err)
	}
	return w, nil
}

// init prepares the ingest under the lock: a fresh one gets its ref,
// startedat and total; an existing one is re-hashed so that the digest
// covers the bytes already written.
func (w *Writer) init() error {
	fresh := !exists(filepath.Join(w.dir, "ref"))
	if !fresh {
		// An ingest for another size (another blob under the same ref)
		// cannot be continued.
		if b, err := os.ReadFile(filepath.Join(w.dir, "total")); err == nil && w.expected.Size > 0 {
			if t, err := strconv.ParseInt(string(b), 10, 64); err == nil && t > 0 && t != w.expected.Size {
				fresh = true
			}
		}
	}
	flags := os.O_RDWR | os.O_CREATE
	if fresh {
		flags |= os.O_TRUNC
		if err := writeSmall(w.dir, "startedat", time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return err
		}
	}
	if w.expected.Size > 0 {
		if err := writeSmall(w.dir, "total", strconv.FormatInt(w.expected.Size, 10)); err != nil {
			return err
		}
	}
	data, err := os.OpenFile(filepath.Join(w.dir, "data"), flags, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(w.digester.Hash(), data)
	if err != nil {
		data.Close()
		return fmt.Errorf("resume: %w", err)
	}
	if w.expected.Size > 0 && n > w.expected.Size {
		// More than the blob can hold: start over.
		if err := data.Truncate(0); err != nil {
			data.Close()
			return err
		}
		if _, err := data.Seek(0, io.SeekStart); err != nil {
			data.Close()
			return err
		}
		w.digester, n = w.expected.Digest.Algorithm().Digester(), 0
	}
	w.data, w.offset = data, n
	if fresh {
		// ref last: its presence marks an initialised ingest.
		if err := writeSmall(w.dir, "ref", w.ref); err != nil {
			return err
		}
	}
	return nil
}

// Ref returns the ingest's ref.
func (w *Writer) Ref() string { return w.ref }

// Offset returns how many bytes the ingest holds: where the next Write goes.
func (w *Writer) Offset() int64 { return w.offset }

// Write appends p to the ingest. Writing past the expected size is an error
// wrapping errdefs.ErrFailedPrecondition and writes nothing.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %q: writer is closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	if w.expected.Size > 0 && w.offset+int64(len(p)) > w.expected.Size {
		return 0, fmt.Errorf("write %q: more than the expected %d bytes of %s: %w",
			w.ref, w.expected.Size, w.expected.Digest, errdefs.ErrFailedPrecondition)
	}
	n, err := w.data.Write(p)
	w.digester.Hash().Write(p[:n])
	w.offset += int64(n)
	return n, err
}

// Commit verifies the ingest against the expected descriptor and moves it
// into the store.
//
//   - Fewer bytes than expected.Size: an error wrapping
//     errdefs.ErrFailedPrecondition; the Writer stays open and the ingest
//     is kept, since what was written may be a correct prefix.
//   - More bytes, or another digest: an error wrapping
//     errdefs.ErrFailedPrecondition that names expected and actual; the
//     ingest is removed.
//   - The blob is already stored: errdefs.ErrAlreadyExists; the ingest is
//     removed.
//
// Otherwise the data is fsynced, renamed to blobs/<alg>/<hex> and the
// directory fsynced, so that a committed blob survives a crash.
func (w *Writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("commit %q: writer is closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	exp := w.expected
	if exp.Size > 0 && w.offset < exp.Size {
		return fmt.Errorf("commit %s: size mismatch: expected %d bytes, got %d: %w",
			exp.Digest, exp.Size, w.offset, errdefs.ErrFailedPrecondition)
	}
	if got := w.digester.Digest(); got != exp.Digest {
		w.Abort()
		return fmt.Errorf("commit %s: digest mismatch: expected %s, got %s (%d bytes): %w",
			exp.Digest, exp.Digest, got, w.offset, errdefs.ErrFailedPrecondition)
	}
	blob, _ := w.s.blobPath(exp.Digest) // validated by Writer
	if err := w.data.Sync(); err != nil {
		return fmt.Errorf("commit %s: %w", exp.Digest, err)
	}
	if exists(blob) {
		w.Abort()
		return fmt.Errorf("content %s: %w", exp.Digest, errdefs.ErrAlreadyExists)
	}
	if err := w.data.Chmod(0o444); err != nil {
		return fmt.Errorf("commit %s: %w", exp.Digest, err)
	}
	if err := os.Rename(filepath.Join(w.dir, "data"), blob); err != nil {
		return fmt.Errorf("commit %s: %w", exp.Digest, err)
	}
	err := syncDir(filepath.Dir(blob))
	// The blob is in place; what remains is clean-up.
	w.Abort()
	if err != nil {
		return fmt.Errorf("commit %s: %w", exp.Digest, err)
	}
	return nil
}

// Close releases the Writer and keeps the ingest, so that a later Writer for
// the same ref resumes it.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	err := w.data.Close()
	w.lock.Close()
	return err
}

// Abort releases the Writer and removes the ingest.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.data.Close()
	err := os.RemoveAll(w.dir) // under the lock: nobody resumes what we remove
	w.lock.Close()
	if err != nil {
		return fmt.Errorf("abort ingest %q: %w", w.ref, err)
	}
	return nil
}

// lockIngest takes the exclusive flock of dir/lock. With create it makes the
// directory and lock file as needed; without, a missing one is
// errdefs.ErrNotFound. With wait it retries until ctx is done; without, a
// held lock is errdefs.ErrUnavailable.
//
// The lock file may be unlinked by its holder (commit and abort remove the
// whole ingest) while we wait on it, so after locking we check that the file
// we hold is still the one at the path, and start over if not.
func lockIngest(ctx context.Context, dir string, create, wait bool) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	delay := time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		flags := os.O_RDWR
		if create {
			flags |= os.O_CREATE
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
		}
		f, err := os.OpenFile(path, flags, 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			if !create {
				return nil, fmt.Errorf("ingest %s: %w", filepath.Base(dir), errdefs.ErrNotFound)
			}
			continue // removed between MkdirAll and open
		}
		if err != nil {
			return nil, err
		}
		err = flock(f)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			if !wait {
				return nil, fmt.Errorf("ingest %s is being written: %w", filepath.Base(dir), errdefs.ErrUnavailable)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(delay):
			}
			delay = min(2*delay, 20*time.Millisecond)
			continue
		}
		if err != nil {
			f.Close()
			return nil, &os.PathError{Op: "flock", Path: path, Err: err}
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if !create && err2 != nil {
			return nil, fmt.Errorf("ingest %s: %w", filepath.Base(dir), errdefs.ErrNotFound)
		}
	}
}

// flock takes a non-blocking exclusive flock(2). flock, unlike fcntl locks,
// belongs to the open file, so two Writers in one process exclude each other
// as two processes do, and the kernel drops it when its holder dies.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeSmall writes one of the ingest's small files atomically, so that a
// crash leaves the old value or the new one.
func writeSmall(dir, name, value string) error {
	f, err := os.CreateTemp(dir, ".tmp-"+name)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if err1 := f.Close(); err == nil {
		err = err1
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
