package logs

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// ReadOptions choose the records Read passes on.
type ReadOptions struct {
	// Since and Until bound the records' times; zero means unbounded.
	// Read ends at the first record after Until.
	Since, Until time.Time
	// Tail is how many of the last records to start from; -1 means all,
	// 0 none (with Follow: only what is written from now on). It counts
	// records in the files, before Since, Until and the stream filter, as
	// Docker does.
	Tail int
	// Follow keeps reading what the writer appends, across rotations,
	// until ctx is done.
	Follow bool
	// Stdout and Stderr choose the streams; both false means both.
	Stdout, Stderr bool
}

// pollInterval is how often a following Read looks for new bytes.
const pollInterval = 150 * time.Millisecond

// maxLine bounds a line Read holds in memory; longer ones are garbage (a
// record of a 16 KiB chunk is at most ~100 KiB escaped).
const maxLine = 1 << 20

// Read calls fn for each record of the log at path in order: rotated files
// oldest first, then the live file. Lines that are not records (garbage, a
// torn last line) are skipped. An error from fn ends Read and is returned.
// A log that does not exist is errdefs.ErrNotFound.
func Read(ctx context.Context, path string, opts ReadOptions, fn func(Entry) error) error {
	if !opts.Stdout && !opts.Stderr {
		opts.Stdout, opts.Stderr = true, true
	}
	files, err := openAll(path)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			f.close()
		}
	}()
	if opts.Tail >= 0 {
		if err := tail(files, opts.Tail); err != nil {
			return err
		}
	}
	r := &reader{opts: opts, fn: fn}
	for i, f := range files {
		live := i == len(files)-1
		if err := r.drain(ctx, f); err != nil {
			return r.result(err)
		}
		if !live {
			continue
		}
		if !opts.Follow {
			return nil
		}
		return r.result(r.follow(ctx, path, f))
	}
	return nil
}

// errDone ends a read early without error (a record past Until).
var errDone = errors.New("done")

type reader struct {
	opts ReadOptions
	fn   func(Entry) error
}

func (r *reader) result(err error) error {
	if errors.Is(err, errDone) {
		return nil
	}
	return err
}

// handle decodes and filters one line and passes it on.
func (r *reader) handle(line []byte) error {
	e, ok := decodeRecord(line)
	if !ok {
		return nil
	}
	if !r.opts.Until.IsZero() && e.Time.After(r.opts.Until) {
		return errDone
	}
	if !r.opts.Since.IsZero() && e.Time.Before(r.opts.Since) {
		return nil
	}
	if (e.Stream == "stdout" && !r.opts.Stdout) || (e.Stream == "stderr" && !r.opts.Stderr) {
		return nil
	}
	return r.fn(e)
}

// drain passes on every complete line of f up to its current end.
func (r *reader) drain(ctx context.Context, f *logFile) error {
	for {
		line, err := f.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if f.skip > 0 {
			f.skip--
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.handle(line); err != nil {
			return err
		}
	}
}

// follow waits for f, the live file, to grow, and when the writer rotates
// it away, reads what was rotated after it and moves to the new live file.
func (r *reader) follow(ctx context.Context, path string, f *logFile) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	defer func() { f.close() }()
	for {
		if !r.opts.Until.IsZero() && time.Now().After(r.opts.Until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := r.drain(ctx, f); err != nil {
			return err
		}
		st, err := os.Stat(path)
		if err != nil {
			continue // between the writer's rename and create
		}
		if fst, err := f.f.Stat(); err == nil && fst.Size() < f.pos {
			// Truncated in place (max-file=1): start over.
			if _, err := f.f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("read log: %w", err)
			}
			f.reset(f.f)
			continue
		}
		if os.SameFile(st, f.st) {
			continue
		}
		// Rotated: finish the old file, then read the files rotated
		// since (newest rotated is path.1), then the new live file.
		if err := r.drain(ctx, f); err != nil {
			return err
		}
		files, err := openAll(path)
		if errdefs.IsNotFound(err) {
			continue // renamed away again before we could open it: next tick
		}
		if err != nil {
			return err
		}
		// Read what was rotated after our file, found by identity since
		// names shift; if it is gone (compressed or dropped), only the new
		// live file is left to read.
		from := len(files) - 1
		for i, nf := range files {
			if os.SameFile(nf.st, f.st) {
				from = i + 1
			}
		}
		f.close()
		for i, nf := range files[:len(files)-1] {
			if i < from {
				nf.close()
				continue
			}
			err := r.drain(ctx, nf)
			nf.close()
			if err != nil {
				return err
			}
		}
		f = files[len(files)-1]
		if err := r.drain(ctx, f); err != nil {
			return err
		}
	}
}

// logFile reads the lines of one file of a log.
type logFile struct {
	f    *os.File
	st   fs.FileInfo
	gz   bool
	rd   *bufio.Reader
	zr   *gzip.Reader
	pos  int64 // bytes of f consumed (plain files)
	skip int   // lines to skip first (tail of a gzipped file)

	pending  []byte
	overflow bool
	line     []byte
}

func openLog(name string, gz bool) (*logFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	l := &logFile{f: f, st: st, gz: gz}
	l.reset(f)
	return l, nil
}

func (l *logFile) reset(r io.Reader) {
	l.pos, l.pending, l.overflow = 0, l.pending[:0], false
	l.rd = bufio.NewReaderSize(r, 64*1024)
}

func (l *logFile) close() {
	if l.zr != nil {
		l.zr.Close()
	}
	l.f.Close()
}

// next returns the next complete line without its "\n", valid until the
// next call. At the end it returns io.EOF and keeps a partial line for
// when the writer finishes it. Over-long lines are dropped.
func (l *logFile) next() ([]byte, error) {
	if l.gz && l.zr == nil {
		zr, err := gzip.NewReader(bufio.NewReader(l.f))
		if err != nil {
			return nil, io.EOF // a torn or foreign .gz: nothing to read
		}
		l.zr = zr
		l.rd = bufio.NewReaderSize(zr, 64*1024)
	}
	for {
		chunk, err := l.rd.ReadSlice('\n')
		l.pos += int64(len(chunk))
		switch {
		case err == nil:
			if l.overflow {
				l.overflow, l.pending = false, l.pending[:0]
				continue
			}
			if len(l.pending) == 0 {
				return chunk[:len(chunk)-1], nil
			}
			l.line = append(append(l.line[:0], l.pending...), chunk[:len(chunk)-1]...)
			l.pending = l.pending[:0]
			return l.line, nil
		case errors.Is(err, bufio.ErrBufferFull) || err == io.EOF:
			if !l.overflow {
				l.pending = append(l.pending, chunk...)
				if len(l.pending) > maxLine {
					l.overflow, l.pending = true, l.pending[:0]
				}
			}
			if err == io.EOF {
				return nil, io.EOF
			}
		case l.gz:
			return nil, io.EOF // corrupt compressed data ends the file
		default:
			return nil, fmt.Errorf("read log: %w", err)
		}
	}
}

// openAll opens the files of the log, oldest first, the live one last. It
// opens newest first and retries when a rotation moved a file meanwhile, so
// the set is one the writer really had.
func openAll(path string) ([]*logFile, error) {
	for attempt := 0; ; attempt++ {
		files, err := openOnce(path)
		if errdefs.IsNotFound(err) && attempt < 20 && rotatedExists(path) {
			// Between the writer's rename of the live file and its
			// creation of the next: try again.
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil || attempt >= 20 || stable(path, files) {
			return files, err
		}
		for _, f := range files {
			f.close()
		}
		time.Sleep(time.Millisecond)
	}
}

func openOnce(path string) ([]*logFile, error) {
	live, err := openLog(path, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("log %s: %w", path, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("open log: %w", err)
	}
	files := []*logFile{live}
	for k := 1; ; k++ {
		f, err := openLog(rotated(path, k, false), false)
		if errors.Is(err, fs.ErrNotExist) {
			f, err = openLog(rotated(path, k, true), true)
		}
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			for _, f := range files {
				f.close()
			}
			return nil, fmt.Errorf("open log: %w", err)
		}
		files = append(files, f)
	}
	for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
		files[i], files[j] = files[j], files[i]
	}
	return files, nil
}

// rotatedExists reports whether the log has a rotated file, so that a
// missing live file means a rotation in progress, not a missing log.
func rotatedExists(path string) bool {
	for _, gz := range []bool{false, true} {
		if _, err := os.Stat(rotated(path, 1, gz)); err == nil {
			return true
		}
	}
	return false
}

// stable reports whether every opened file is still under its name.
func stable(path string, files []*logFile) bool {
	n := len(files)
	for i, f := range files {
		name := path
		if k := n - 1 - i; k > 0 {
			name = rotated(path, k, f.gz)
		}
		st, err := os.Stat(name)
		if err != nil || !os.SameFile(st, f.st) {
			return false
		}
	}
	for _, gz := range []bool{false, true} {
		if _, err := os.Stat(rotated(path, n, gz)); !errors.Is(err, fs.ErrNotExist) {
			return false // a gap we stopped at has filled
		}
	}
	return true
}
