package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "crypto/sha512" // digests other than sha256 need their hash linked in

	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store is a content store rooted at a directory. It holds no state beyond
// its root: every method works on the directory, so many Stores, in this
// process or in others, may share one root.
type Store struct {
	root string
}

// Open returns the store rooted at root, creating its directories.
func Open(root string) (*Store, error) {
	for _, d := range []string{filepath.Join(root, "blobs", string(digest.SHA256)), filepath.Join(root, "ingest")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open content store: %w", err)
		}
	}
	return &Store{root: root}, nil
}

// Root returns the directory the store lives in.
func (s *Store) Root() string { return s.root }

// blobPath returns the path of dgst, refusing digests that do not validate:
// a digest is a file name here, so "sha256:../../x" must never reach Join.
func (s *Store) blobPath(dgst digest.Digest) (string, error) {
	if err := dgst.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %v: %w", dgst, err, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.root, "blobs", string(dgst.Algorithm()), dgst.Encoded()), nil
}

func (s *Store) ingestDir(ref string) string {
	h := sha256.Sum256([]byte(ref))
	return filepath.Join(s.root, "ingest", hex.EncodeToString(h[:]))
}

// blobFile is a committed blob opened for reading.
type blobFile struct {
	*os.File
	size int64
}

func (b blobFile) Size() int64 { return b.size }

func (s *Store) openBlob(dgst digest.Digest) (blobFile, error) {
	p, err := s.blobPath(dgst)
	if err != nil {
		return blobFile{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return blobFile{}, fmt.Errorf("content %s: %w", dgst, errdefs.ErrNotFound)
		}
		return blobFile{}, fmt.Errorf("open content %s: %w", dgst, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return blobFile{}, fmt.Errorf("open content %s: %w", dgst, err)
	}
	return blobFile{File: f, size: fi.Size()}, nil
}

// ReaderAt opens the blob desc.Digest for random access. If desc.Size is
// not 0 it must equal the blob's size (errdefs.ErrFailedPrecondition
// otherwise); a missing blob is errdefs.ErrNotFound.
func (s *Store) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := s.openBlob(desc.Digest)
	if err != nil {
		return nil, err
	}
	if desc.Size != 0 && desc.Size != b.size {
		b.Close()
		return nil, fmt.Errorf("content %s: descriptor size %d, stored size %d: %w",
			desc.Digest, desc.Size, b.size, errdefs.ErrFailedPrecondition)
	}
	return b, nil
}

// Open opens the blob dgst for sequential reading.
func (s *Store) Open(ctx context.Context, dgst digest.Digest) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := s.openBlob(dgst)
	if err != nil {
		return nil, err
	}
	return b.File, nil
}

// Info describes the blob dgst; errdefs.ErrNotFound if it is not stored.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	p, err := s.blobPath(dgst)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("content %s: %w", dgst, errdefs.ErrNotFound)
		}
		return Info{}, fmt.Errorf("stat content %s: %w", dgst, err)
	}
	return Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// Delete removes the blob dgst; errdefs.ErrNotFound if it is not stored.
// Readers that have it open keep reading it. Deciding that nothing refers to
// dgst any more is the caller's job (garbage collection over meta's records
// and leases).
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.blobPath(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("content %s: %w", dgst, errdefs.ErrNotFound)
		}
		return fmt.Errorf("delete content %s: %w", dgst, err)
	}
	return nil
}

// Walk calls fn for every committed blob, in no particular order, and stops
// at the first error fn returns (which Walk returns). Files in blobs/ whose
// names are not valid digests are skipped.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	algs, err := os.ReadDir(filepath.Join(s.root, "blobs"))
	if err != nil {
		return fmt.Errorf("walk content: %w", err)
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(s.root, "blobs", alg.Name()))
		if err != nil {
			return fmt.Errorf("walk content: %w", err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), e.Name())
			if !e.Type().IsRegular() || dgst.Validate() != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted while we walked
				}
				return fmt.Errorf("walk content: %w", err)
			}
			if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Ingests lists the ingests in progress or left behind by a crash.
func (s *Store) Ingests(ctx context.Context) ([]Status, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "ingest"))
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var out []Status
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() {
			continue
		}
		st, ok := readStatus(filepath.Join(s.root, "ingest", e.Name()))
		if ok {
			out = append(out, st)
		}
	}
	return out, nil
}

// readStatus reads an ingest directory without its lock: the values are a
// snapshot. ok is false when the directory has no ref yet (it is being
// created) or is gone.
func readStatus(dir string) (st Status, ok bool) {
	ref, err := os.ReadFile(filepath.Join(dir, "ref"))
	if err != nil {
		return Status{}, false
	}
	st.Ref = string(ref)
	if b, err := os.ReadFile(filepath.Join(dir, "total")); err == nil {
		st.Total, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "startedat")); err == nil {
		st.StartedAt, _ = time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	}
	if fi, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		st.Offset, st.UpdatedAt = fi.Size(), fi.ModTime()
	} else if fi, err := os.Stat(dir); err == nil {
		st.UpdatedAt = fi.ModTime()
	}
	return st, true
}

// AbortIngest removes the ingest ref. It is errdefs.ErrNotFound if there is
// none, and errdefs.ErrUnavailable if a live Writer holds it.
func (s *Store) AbortIngest(ctx context.Context, ref string) error {
	dir := s.ingestDir(ref)
	lock, err := lockIngest(ctx, dir, false, false)
	if err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	defer lock.Close()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	return nil
}

// CleanIngests removes the ingests that no live Writer holds and that have
// not been written for olderThan: the leftovers of crashed or abandoned
// pulls. It returns how many it removed.
func (s *Store) CleanIngests(ctx context.Context, olderThan time.Duration) (int, error) {
	base := filepath.Join(s.root, "ingest")
	ents, err := os.ReadDir(base)
	if err != nil {
		return 0, fmt.Errorf("clean ingests: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	n := 0
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		dir := filepath.Join(base, e.Name())
		if !e.IsDir() {
			os.Remove(dir) // nothing but ingest directories belongs here
			continue
		}
		st, _ := readStatus(dir)
		if st.UpdatedAt.IsZero() {
			if fi, err := os.Stat(dir); err == nil {
				st.UpdatedAt = fi.ModTime()
			}
		}
		if st.UpdatedAt.After(cutoff) {
			continue
		}
		lock, err := lockIngest(ctx, dir, false, false)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				// No lock file: a directory a crash left before its lock
				// existed. Nothing can be waiting on it.
				if os.RemoveAll(dir) == nil {
					n++
				}
			}
			continue // busy: a live writer owns it
		}
		err = os.RemoveAll(dir)
		lock.Close()
		if err != nil {
			return n, fmt.Errorf("clean ingest %s: %w", dir, err)
		}
		n++
	}
	return n, nil
}
