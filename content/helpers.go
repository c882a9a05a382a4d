package content

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// WriteBlob copies r into the store as the blob desc, through the ingest ref,
// and commits it. If an earlier, interrupted WriteBlob for ref left data
// behind, the copy resumes at that offset: r is advanced past the bytes
// already stored (by Seek when r is an io.Seeker, by reading them otherwise).
// A blob that is already in the store is success.
//
// On error the ingest is kept for a later attempt, except when the bytes
// turn out not to match desc, in which case Commit has removed them.
func WriteBlob(ctx context.Context, ing Ingester, ref string, r io.Reader, desc ocispec.Descriptor) error {
	w, err := ing.Writer(ctx, ref, desc)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	defer w.Close()
	if off := w.Offset(); off > 0 {
		if err := skip(r, off); err != nil {
			return fmt.Errorf("resume %s at offset %d: %w", ref, off, err)
		}
	}
	if _, err := io.Copy(w, readerCtx{ctx, r}); err != nil {
		return fmt.Errorf("write %s: %w", ref, err)
	}
	if err := w.Commit(ctx); err != nil && !errdefs.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func skip(r io.Reader, n int64) error {
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(n, io.SeekStart)
		return err
	}
	_, err := io.CopyN(io.Discard, r, n)
	return err
}

// readerCtx makes a long io.Copy stop when ctx is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// ReadBlob reads the whole blob desc into memory, for small blobs such as
// manifests, indexes and configs. A blob larger than maxSize is refused
// before it is read (a hostile registry's "manifest" may be 10 GB), and the
// bytes are checked against desc.Digest whatever the provider is.
func ReadBlob(ctx context.Context, p Provider, desc ocispec.Descriptor, maxSize int64) ([]byte, error) {
	if desc.Size > maxSize {
		return nil, fmt.Errorf("read %s: size %d exceeds the limit of %d bytes: %w",
			desc.Digest, desc.Size, maxSize, errdefs.ErrInvalidArgument)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("read %q: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	ra, err := p.ReaderAt(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	size := ra.Size()
	if size > maxSize {
		return nil, fmt.Errorf("read %s: size %d exceeds the limit of %d bytes: %w",
			desc.Digest, size, maxSize, errdefs.ErrInvalidArgument)
	}
	buf := make([]byte, size)
	if n, err := ra.ReadAt(buf, 0); n < len(buf) {
		return nil, fmt.Errorf("read %s: short read (%d of %d bytes): %w", desc.Digest, n, size, err)
	}
	if got := desc.Digest.Algorithm().FromBytes(buf); got != desc.Digest {
		return nil, fmt.Errorf("read %s: digest mismatch: got %s: %w", desc.Digest, got, errdefs.ErrFailedPrecondition)
	}
	return buf, nil
}
