// Package linereader reads the newline-terminated lines of a file that may
// still be growing: a partial last line is kept until its writer finishes
// it, and a line longer than a bound is dropped instead of held in memory.
// The event log and the container logs read their files with it.
package linereader

import (
	"bufio"
	"errors"
	"io"
)

// Reader reads lines from a source through a buffer of fixed size. It is
// not safe for concurrent use.
type Reader struct {
	rd       *bufio.Reader
	max      int
	pending  []byte // a line read up to the end of the source so far
	overflow bool   // the line being read is longer than max: drop it
	line     []byte // pending joined with its end, returned by Next

	// N counts the bytes read from the source since New or Reset:
	// complete lines, dropped ones and the partial line kept.
	N int64
}

// New returns a Reader of src through a buffer of size bytes (at least 16)
// that drops lines longer than max bytes, not counting the "\n".
func New(src io.Reader, size, max int) *Reader {
	return &Reader{rd: bufio.NewReaderSize(src, size), max: max}
}

// Reset makes r read src from its current offset, as a new Reader would,
// keeping its buffers.
func (r *Reader) Reset(src io.Reader) {
	r.rd.Reset(src)
	r.pending, r.overflow, r.N = r.pending[:0], false, 0
}

// Next returns the next complete line without its "\n", valid until the
// next call. At the end of the source it returns io.EOF and keeps a
// partial line, so a later call returns it whole once its writer has
// appended the rest. Lines longer than max are skipped. Another error of
// the source is returned as it is, for the caller to wrap.
func (r *Reader) Next() ([]byte, error) {
	for {
		chunk, err := r.rd.ReadSlice('\n')
		r.N += int64(len(chunk))
		switch {
		case err == nil:
			if r.overflow || len(r.pending)+len(chunk)-1 > r.max {
				r.overflow, r.pending = false, r.pending[:0]
				continue
			}
			if len(r.pending) == 0 {
				return chunk[:len(chunk)-1], nil
			}
			r.line = append(append(r.line[:0], r.pending...), chunk[:len(chunk)-1]...)
			r.pending = r.pending[:0]
			return r.line, nil
		case err == io.EOF || errors.Is(err, bufio.ErrBufferFull):
			if !r.overflow {
				if len(r.pending)+len(chunk) > r.max {
					r.overflow, r.pending = true, r.pending[:0]
				} else {
					r.pending = append(r.pending, chunk...)
				}
			}
			if err == io.EOF {
				return nil, io.EOF
			}
		default:
			return nil, err
		}
	}
}
