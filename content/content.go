// Package content stores immutable blobs addressed by their digest, in the
// shape of containerd's local content store.
//
// A blob's life is ingest → commit → provide → delete:
//
//	<root>/
//	├── blobs/
//	│   └── sha256/<hex>                  committed, verified, read-only
//	└── ingest/
//	    └── <sha256(ref)>/                one per writer ref, resumable
//	        ├── lock                      flock(2)ed by the one live Writer
//	        ├── ref                       the writer's ref, as given
//	        ├── total                     expected size, when known
//	        ├── startedat                 RFC 3339 time of the first Writer
//	        └── data                      the bytes written so far
//
// A Writer holds an exclusive flock on its ingest's lock file, so writers of
// the same ref in this process or in others take turns; a second Writer waits
// for the first and then continues at the offset it left (or reports
// errdefs.ErrAlreadyExists if the first committed). flock dies with its
// process, so a writer killed at any point leaves an ingest that the next
// Writer resumes.
//
// Commit checks the size and the digest of data against the descriptor the
// Writer was opened with, fsyncs it and renames it into blobs/: nothing lands
// in blobs/ that does not match its name, and a blob appears there whole or
// not at all.
package content

import (
	"context"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Provider gives access to committed blobs. It is the narrowest interface a
// reader of content needs; *Store implements it.
type Provider interface {
	// ReaderAt opens the blob desc.Digest. A desc.Size other than 0 must
	// match the blob's size.
	ReaderAt(ctx context.Context, desc ocispec.Descriptor) (ReaderAt, error)
}

// Ingester starts writes of new blobs. It is the narrowest interface a writer
// of content needs; *Store implements it, and wrappers (for example one that
// records a lease first) return the *Writer of the store they wrap.
type Ingester interface {
	// Writer opens the ingest ref for a blob expected to match expected.
	Writer(ctx context.Context, ref string, expected ocispec.Descriptor) (*Writer, error)
}

// ReaderAt reads a committed blob at any offset. Close releases it.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	// Size returns the size of the blob in bytes.
	Size() int64
}

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time // when it was committed
}

// Status describes an ingest in progress (or abandoned by a crash).
type Status struct {
	Ref       string
	Offset    int64     // bytes written so far
	Total     int64     // expected size; 0 when unknown
	StartedAt time.Time // when the first Writer for Ref opened it
	UpdatedAt time.Time // when data was last written
}

var (
	_ Provider = (*Store)(nil)
	_ Ingester = (*Store)(nil)
)
