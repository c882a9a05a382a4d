package logs

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// Writer appends records to a log and rotates it.
//
// A log has exactly one Writer, in one process: the container's shim. Two
// Writers on the same path would rotate each other's files away. The
// methods of a Writer are safe for concurrent use (stdout and stderr
// copiers share it).
//
// Each record reaches the file in one write(2) on an O_APPEND descriptor,
// and rotation only renames files, so a concurrent reader sees whole
// records, at worst the unfinished tail of the last one, which Read waits
// for or skips. Readers in other processes also rely on this: the Writer
// closes the live file before renaming it (a file renamed away is
// complete), creates the next one before compressing the old, and names
// in the gzip header the file it compressed.
type Writer struct {
	path string
	opts Options

	mu   sync.Mutex
	f    *os.File
	size int64
	last time.Time // of the live file's last record, for the gzip header
	buf  []byte
}

// NewWriter opens the log at path for appending, creating it if needed.
// Zero fields of opts take the defaults (10 MB × 3).
func NewWriter(path string, opts Options) (*Writer, error) {
	opts = opts.withDefaults()
	if opts.MaxFile < 1 {
		return nil, fmt.Errorf("max-file cannot be less than 1: %w", errdefs.ErrInvalidArgument)
	}
	if opts.MaxSize < -1 {
		return nil, fmt.Errorf("max-size must be a positive number: %w", errdefs.ErrInvalidArgument)
	}
	w := &Writer{path: path, opts: opts}
	if err := w.open(); err != nil {
		return nil, err
	}
	// A shim killed in the middle of a write leaves a torn last record;
	// end it so the next record starts on a line of its own.
	if w.size > 0 {
		last := make([]byte, 1)
		if _, err := w.f.ReadAt(last, w.size-1); err == nil && last[0] != '\n' {
			if err := w.write([]byte{'\n'}); err != nil {
				w.f.Close()
				return nil, err
			}
		}
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log: %w", err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

func (w *Writer) write(p []byte) error {
	n, err := w.f.Write(p)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

// Write logs bytes read from the container's stream ("stdout" or "stderr")
// at time t, cut as Docker's copier cuts them: one record per line, the
// line's "\n" kept; a line longer than 16 KiB becomes records of 16 KiB
// without "\n"; bytes after the last "\n" become a record without "\n".
// The shim should pass whole lines when it has them.
func (w *Writer) Write(stream string, line []byte, t time.Time) error {
	if stream != "stdout" && stream != "stderr" {
		return fmt.Errorf("log stream %q: %w", stream, errdefs.ErrInvalidArgument)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("write log: %w", os.ErrClosed)
	}
	for len(line) > 0 {
		n := min(len(line), maxChunk)
		if i := bytes.IndexByte(line[:n], '\n'); i >= 0 {
			n = i + 1
		}
		if err := w.rotateIfFull(); err != nil {
			return err
		}
		var err error
		if w.buf, err = appendRecord(w.buf[:0], stream, line[:n], t); err != nil {
			return fmt.Errorf("encode log record: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		if err := w.write(w.buf); err != nil {
			return err
		}
		w.last = t
		line = line[n:]
	}
	if cap(w.buf) > 4*maxChunk { // keep the shim small after a burst of escapes
		w.buf = nil
	}
	return nil
}

// rotateIfFull rotates before a write, as Docker's LogFile does, once the
// live file has reached MaxSize.
func (w *Writer) rotateIfFull() error {
	if w.opts.MaxSize < 0 || w.size < w.opts.MaxSize {
		return nil
	}
	if w.opts.MaxFile < 2 {
		if err := w.f.Truncate(0); err != nil {
			return fmt.Errorf("truncate log: %w", err)
		}
		w.size = 0
		return nil
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close log: %w", err)
	}
	w.f = nil
	last := w.last
	w.last = time.Time{}
	err := w.shift()
	// Keep logging into whatever file the path now names; a new one as
	// soon as the old is renamed, so readers never wait on compression.
	if oerr := w.open(); oerr != nil {
		return errors.Join(err, oerr)
	}
	if err != nil {
		return err
	}
	if w.opts.Compress {
		if err := compress(rotated(w.path, 1, false), rotated(w.path, 1, true), last); err != nil {
			return fmt.Errorf("compress rotated log: %w", err)
		}
	}
	return nil
}

// rotated names the K-th rotated file.
func rotated(path string, k int, gz bool) string {
	name := path + "." + strconv.Itoa(k)
	if gz {
		name += ".gz"
	}
	return name
}

// shift moves path.K to path.K+1 (dropping the oldest), then path to
// path.1. Every step is a rename into a name the step before vacated, so
// a file only ever moves to an older name, and at any moment the names
// order the files by age with at most one gap: what Read relies on.
func (w *Writer) shift() error {
	last := w.opts.MaxFile - 1
	for _, g := range []bool{false, true} {
		if err := os.Remove(rotated(w.path, last, g)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	for k := last - 1; k >= 1; k-- {
		// Both forms: a plain file left by a writer killed before it
		// compressed moves along with the rest.
		for _, g := range []bool{false, true} {
			if err := os.Rename(rotated(w.path, k, g), rotated(w.path, k+1, g)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("rotate log: %w", err)
			}
		}
	}
	if err := os.Rename(w.path, rotated(w.path, 1, false)); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	return nil
}

// gzipMeta is the gzip header's Extra field of a rotated file. lastTime is
// Docker's (moby's rotateFileMetadata), which lets docker skip the file
// for --since; source is ours: the plain file the gzip was made from, so a
// follower that holds that file open finds its place after compression.
type gzipMeta struct {
	LastTime time.Time `json:"lastTime,omitzero"`
	Source   *source   `json:"source,omitempty"`
}

// compress writes src gzipped to dst through a temporary file, renames it
// into place and removes src.
func compress(src, dst string, last time.Time) (retErr error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	meta := gzipMeta{LastTime: last}
	if st, err := in.Stat(); err == nil {
		meta.Source = &source{ID: idOf(st), Size: st.Size()}
	}
	extra, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	zw := gzip.NewWriter(out)
	zw.Extra = extra
	if _, err := io.Copy(zw, in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return os.Remove(src)
}

// Close closes the live file. Writes after Close fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close log: %w", err)
	}
	return nil
}
