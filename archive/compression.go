package archive

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/berth-dev/berth/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression names a layer's compression.
type Compression uint8

// The compressions a layer may use (OCI image-spec layer media types).
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// String returns the name used in media types ("gzip", "zstd") or
// "uncompressed".
func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "uncompressed"
}

// Magic numbers at the start of a compressed stream.
const (
	gzipMagic = "\x1f\x8b\x08"
	zstdMagic = "\x28\xb5\x2f\xfd"
)

// DetectCompression reports the compression whose magic number starts b.
func DetectCompression(b []byte) Compression {
	switch {
	case bytes.HasPrefix(b, []byte(gzipMagic)):
		return Gzip
	case bytes.HasPrefix(b, []byte(zstdMagic)):
		return Zstd
	}
	return Uncompressed
}

// DecompressStream sniffs r's compression from its first bytes and returns
// a reader of the uncompressed stream. Closing it releases the decoder; it
// does not close r.
func DecompressStream(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, Uncompressed, fmt.Errorf("sniff compression: %w", err)
	}
	switch c := DetectCompression(head); c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("open gzip stream: %w: %w", errdefs.ErrInvalidArgument, err)
		}
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, c, fmt.Errorf("open zstd stream: %w: %w", errdefs.ErrInvalidArgument, err)
		}
		return zr.IOReadCloser(), c, nil
	}
	return io.NopCloser(br), Uncompressed, nil
}

// CompressStream returns a writer that compresses into w with c. Close it
// to flush the compressor; that does not close w.
func CompressStream(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		return gzip.NewWriter(w), nil
	case Zstd:
		zw, err := zstd.NewWriter(w)
		if err != nil {
			return nil, fmt.Errorf("open zstd writer: %w", err)
		}
		return zw, nil
	}
	return nil, fmt.Errorf("compression %d: %w", c, errdefs.ErrInvalidArgument)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
