package content_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// blob returns size deterministic pseudo-random bytes and their descriptor.
func blob(seed uint64, size int) ([]byte, ocispec.Descriptor) {
	b := make([]byte, size)
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(b), Size: int64(size)}
}

func newStore(t *testing.T) *content.Store {
	t.Helper()
	s, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifyStore checks every committed blob against its name: the property
// the store promises whatever happened to the writers.
func verifyStore(t *testing.T, s *content.Store) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	err := s.Walk(ctx, func(info content.Info) error {
		n++
		rc, err := s.Open(ctx, info.Digest)
		if err != nil {
			return err
		}
		defer rc.Close()
		d := info.Digest.Algorithm().Digester()
		if _, err := io.Copy(d.Hash(), rc); err != nil {
			return err
		}
		if d.Digest() != info.Digest {
			return fmt.Errorf("blob %s holds %s", info.Digest, d.Digest())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("verify store: %v", err)
	}
	return n
}

func mustIngests(t *testing.T, s *content.Store) []content.Status {
	t.Helper()
	st, err := s.Ingests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestWriteCommitRead(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, size := range []int{0, 1, 4096, 1 << 20} {
		data, desc := blob(uint64(size), size)
		if err := content.WriteBlob(ctx, s, "ref-"+desc.Digest.Encoded(), bytes.NewReader(data), desc); err != nil {
			t.Fatalf("WriteBlob(%d bytes): %v", size, err)
		}
		got, err := content.ReadBlob(ctx, s, desc, 2<<20)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadBlob(%d bytes) = %d bytes, %v", size, len(got), err)
		}
		ra, err := s.ReaderAt(ctx, desc)
		if err != nil {
			t.Fatal(err)
		}
		if ra.Size() != int64(size) {
			t.Errorf("ReaderAt.Size() = %d, want %d", ra.Size(), size)
		}
		ra.Close()
		info, err := s.Info(ctx, desc.Digest)
		if err != nil || info.Size != int64(size) || info.Digest != desc.Digest {
			t.Errorf("Info = %+v, %v", info, err)
		}
		p := filepath.Join(s.Root(), "blobs", "sha256", desc.Digest.Encoded())
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o222 != 0 {
			t.Errorf("blob file %s: %v, %v; want read-only", p, fi, err)
		}
		// Already stored: Writer says so, WriteBlob treats it as success.
		if _, err := s.Writer(ctx, "again", desc); !errdefs.IsAlreadyExists(err) {
			t.Errorf("Writer for a stored blob: %v, want ErrAlreadyExists", err)
		}
		if err := content.WriteBlob(ctx, s, "again", bytes.NewReader(data), desc); err != nil {
			t.Errorf("WriteBlob of a stored blob: %v", err)
		}
	}
	if n := verifyStore(t, s); n != 4 {
		t.Errorf("Walk saw %d blobs, want 4", n)
	}
	if st := mustIngests(t, s); len(st) != 0 {
		t.Errorf("ingests left after commits: %+v", st)
	}
	_, desc := blob(1, 1)
	if err := s.Delete(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Delete again": s.Delete(ctx, desc.Digest),
		"Info":         func() error { _, err := s.Info(ctx, desc.Digest); return err }(),
		"ReaderAt":     func() error { _, err := s.ReaderAt(ctx, desc); return err }(),
		"Open":         func() error { _, err := s.Open(ctx, desc.Digest); return err }(),
	} {
		if !errdefs.IsNotFound(err) {
			t.Errorf("%s after Delete: %v, want ErrNotFound", name, err)
		}
	}
}

func TestInvalidArguments(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	_, good := blob(1, 10)
	bad := []ocispec.Descriptor{
		{Digest: "sha256:../../../etc/passwd"},
		{Digest: ""},
		{Digest: "md5:d41d8cd98f00b204e9800998ecf8427e"},
		{Digest: good.Digest, Size: -1},
	}
	for _, d := range bad {
		if _, err := s.Writer(ctx, "r", d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Writer(%q, size %d): %v, want ErrInvalidArgument", d.Digest, d.Size, err)
		}
		if _, err := s.Info(ctx, d.Digest); d.Size == 0 && !errdefs.IsInvalidArgument(err) {
			t.Errorf("Info(%q): %v, want ErrInvalidArgument", d.Digest, err)
		}
	}
	if _, err := s.Writer(ctx, "", good); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Writer with empty ref: %v, want ErrInvalidArgument", err)
	}
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, desc := blob(7, 100_000)
	w, err := s.Writer(ctx, "layer", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:30_000]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	st := mustIngests(t, s)
	if len(st) != 1 || st[0].Ref != "layer" || st[0].Offset != 30_000 || st[0].Total != 100_000 || st[0].StartedAt.IsZero() {
		t.Fatalf("Ingests = %+v", st)
	}
	w, err = s.Writer(ctx, "layer", desc)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 30_000 {
		t.Fatalf("resumed Offset() = %d, want 30000", w.Offset())
	}
	if _, err := w.Write(data[30_000:60_000]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// WriteBlob resumes too, skipping what is stored, with a reader that
	// cannot seek.
	r := &countingReader{r: bytes.NewReader(data)}
	if err := content.WriteBlob(ctx, s, "layer", io.MultiReader(r), desc); err != nil {
		t.Fatal(err)
	}
	if got, _ := content.ReadBlob(ctx, s, desc, 1<<20); !bytes.Equal(got, data) {
		t.Fatal("resumed blob differs from the data")
	}
	if len(mustIngests(t, s)) != 0 {
		t.Error("ingest left after commit")
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestAbort(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, desc := blob(3, 5000)
	w, err := s.Writer(ctx, "a", desc)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:100])
	// A live writer's ingest cannot be aborted from outside.
	if err := s.AbortIngest(ctx, "a"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("AbortIngest of a held ingest: %v, want ErrUnavailable", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if len(mustIngests(t, s)) != 0 {
		t.Fatal("ingest left after Abort")
	}
	w, _ = s.Writer(ctx, "a", desc)
	if w.Offset() != 0 {
		t.Errorf("Offset after Abort = %d, want 0", w.Offset())
	}
	w.Write(data[:200])
	w.Close()
	if err := s.AbortIngest(ctx, "a"); err != nil {
		t.Fatalf("AbortIngest: %v", err)
	}
	if err := s.AbortIngest(ctx, "a"); !errdefs.IsNotFound(err) {
		t.Errorf("AbortIngest of nothing: %v, want ErrNotFound", err)
	}
	if n := verifyStore(t, s); n != 0 {
		t.Errorf("%d blobs after aborts, want 0", n)
	}
}

func TestSizeMismatch(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, desc := blob(4, 1000)

	// Too many bytes: refused at Write.
	w, _ := s.Writer(ctx, "big", desc)
	if _, err := w.Write(append(bytes.Clone(data), 'x')); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Write past the size: %v, want ErrFailedPrecondition", err)
	}
	w.Abort()

	// Too few: Commit refuses, the ingest stays and can be finished.
	w, _ = s.Writer(ctx, "short", desc)
	w.Write(data[:999])
	err := w.Commit(ctx)
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "expected 1000 bytes, got 999") {
		t.Errorf("short Commit: %v, want ErrFailedPrecondition naming both sizes", err)
	}
	if _, err := s.Info(ctx, desc.Digest); !errdefs.IsNotFound(err) {
		t.Errorf("blob stored after a short commit: %v", err)
	}
	w.Write(data[999:])
	if err := w.Commit(ctx); err != nil {
		t.Errorf("Commit after completing: %v", err)
	}

	// Unknown size: only the digest decides.
	data2, desc2 := blob(5, 777)
	desc2.Size = 0
	if err := content.WriteBlob(ctx, s, "nosize", bytes.NewReader(data2), desc2); err != nil {
		t.Errorf("WriteBlob with unknown size: %v", err)
	}
	// A descriptor that lies about the size of a stored blob.
	desc2.Size = 778
	if _, err := s.ReaderAt(ctx, desc2); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("ReaderAt with the wrong size: %v, want ErrFailedPrecondition", err)
	}
	verifyStore(t, s)
}

func TestDigestMismatch(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, desc := blob(6, 4096)
	data[100] ^= 1
	got := digest.FromBytes(data)
	w, _ := s.Writer(ctx, "lie", desc)
	w.Write(data)
	err := w.Commit(ctx)
	if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), desc.Digest.String()) || !strings.Contains(err.Error(), got.String()) {
		t.Errorf("Commit of wrong bytes: %v, want ErrFailedPrecondition naming %s and %s", err, desc.Digest, got)
	}
	if len(mustIngests(t, s)) != 0 {
		t.Error("ingest kept after a digest mismatch")
	}
	if n := verifyStore(t, s); n != 0 {
		t.Errorf("%d blobs after a digest mismatch", n)
	}
	// Same through WriteBlob, and with unknown size.
	desc.Size = 0
	if err := content.WriteBlob(ctx, s, "lie", bytes.NewReader(data), desc); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("WriteBlob of wrong bytes: %v", err)
	}
	if n := verifyStore(t, s); n != 0 {
		t.Errorf("%d blobs after a digest mismatch", n)
	}
}

// errReader is a stream cut off after n bytes, as a registry failing mid-blob.
type errReader struct {
	r io.Reader
	n int
}

func (e *errReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	p = p[:min(len(p), e.n)]
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

func TestTruncated(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, desc := blob(8, 200_000)
	err := content.WriteBlob(ctx, s, "cut", &errReader{r: bytes.NewReader(data), n: 70_000}, desc)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("WriteBlob of a cut stream: %v", err)
	}
	if _, err := s.Info(ctx, desc.Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("truncated blob was stored: %v", err)
	}
	// A stream that ends early without an error: Commit catches it.
	err = content.WriteBlob(ctx, s, "cut", bytes.NewReader(data[:150_000]), desc)
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("WriteBlob of a short stream: %v, want ErrFailedPrecondition", err)
	}
	if st := mustIngests(t, s); len(st) != 1 || st[0].Offset != 150_000 {
		t.Fatalf("Ingests = %+v, want one at 150000", st)
	}
	if err := content.WriteBlob(ctx, s, "cut", bytes.NewReader(data), desc); err != nil {
		t.Fatalf("next WriteBlob: %v", err)
	}
	if got, err := content.ReadBlob(ctx, s, desc, 1<<20); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadBlob after resume: %v", err)
	}
}

// lyingProvider hands out other bytes than the descriptor names.
type lyingProvider struct{ data []byte }

type bytesReaderAt struct{ *bytes.Reader }

func (bytesReaderAt) Close() error { return nil }

func (p lyingProvider) ReaderAt(context.Context, ocispec.Descriptor) (content.ReaderAt, error) {
	return bytesReaderAt{bytes.NewReader(p.data)}, nil
}

func TestReadBlobLimits(t *testing.T) {
	ctx := context.Background()
	data, desc := blob(9, 2000)
	big := desc
	big.Size = 10 << 30
	if _, err := content.ReadBlob(ctx, lyingProvider{data}, big, 4<<20); !errdefs.IsInvalidArgument(err) {
		t.Errorf("ReadBlob of a 10 GB descriptor: %v, want ErrInvalidArgument", err)
	}
	unknown := desc
	unknown.Size = 0
	if _, err := content.ReadBlob(ctx, lyingProvider{data}, unknown, 1000); !errdefs.IsInvalidArgument(err) {
		t.Errorf("ReadBlob of a 2000-byte blob with limit 1000: %v, want ErrInvalidArgument", err)
	}
	other, _ := blob(10, 2000)
	if _, err := content.ReadBlob(ctx, lyingProvider{other}, desc, 4096); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("ReadBlob of other bytes: %v, want ErrFailedPrecondition", err)
	}
	if got, err := content.ReadBlob(ctx, lyingProvider{data}, desc, 4096); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob: %v", err)
	}
}

func TestCleanIngests(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, desc := blob(11, 1000)
	w, _ := s.Writer(ctx, "old", desc)
	w.Write(data[:10])
	w.Close()
	_, desc2 := blob(12, 1000)
	live, _ := s.Writer(ctx, "live", desc2)
	defer live.Close()
	if n, err := s.CleanIngests(ctx, time.Hour); err != nil || n != 0 {
		t.Errorf("CleanIngests(1h) = %d, %v; want 0", n, err)
	}
	time.Sleep(20 * time.Millisecond)
	n, err := s.CleanIngests(ctx, 10*time.Millisecond)
	if err != nil || n != 1 {
		t.Errorf("CleanIngests(10ms) = %d, %v; want 1 (the live one is held)", n, err)
	}
	if st := mustIngests(t, s); len(st) != 1 || st[0].Ref != "live" {
		t.Errorf("Ingests after clean = %+v, want only live", st)
	}
}

func TestConcurrentGoroutines(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data, desc := blob(13, 3<<20)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			// Small reads so that the writers overlap in time.
			errs[i] = content.WriteBlob(ctx, s, "same", io.LimitReader(&slowReader{bytes.NewReader(data)}, int64(len(data))), desc)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if n := verifyStore(t, s); n != 1 {
		t.Errorf("%d blobs, want 1", n)
	}
	if st := mustIngests(t, s); len(st) != 0 {
		t.Errorf("ingests left: %+v", st)
	}
}

// slowReader returns at most 32 KiB per Read.
type slowReader struct{ r io.Reader }

func (s *slowReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), 32<<10)]) }

func TestWriterWaitHonoursContext(t *testing.T) {
	s := newStore(t)
	_, desc := blob(14, 100)
	w, err := s.Writer(context.Background(), "held", desc)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Writer(ctx, "held", desc); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Writer while held: %v, want DeadlineExceeded", err)
	}
}
