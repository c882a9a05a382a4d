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

	"github.com/berth-dev/berth/linereader"
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

// maxLine bounds a line Read holds in memory; longer ones are garbage (a
// record of a 16 KiB chunk is at most ~100 KiB escaped).
const maxLine = 1 << 20

// Read calls fn for each record of the log at path in order: rotated files
// oldest first, then the live file. Lines that are not records (garbage, a
// torn last line) are skipped. An error from fn ends Read and is returned.
// A log that does not exist is errdefs.ErrNotFound.
//
// Read works on the files as they were when it started, found as one state
// the log really had, however fast the writer rotates; a follower then goes
// on from file to file by their identity (see snapshot.go), so it neither
// loses nor repeats records unless it falls more than max-file rotations
// behind, when it continues from the oldest file left.
func Read(ctx context.Context, path string, opts ReadOptions, fn func(Entry) error) error {
	if !opts.Stdout && !opts.Stderr {
		opts.Stdout, opts.Stderr = true, true
	}
	d := newLogDir(path)
	files, err := d.openAll(ctx)
	if err != nil {
		return err
	}
	defer func() { closeAll(files) }()
	if opts.Tail >= 0 {
		if err := tail(files, opts.Tail); err != nil {
			return err
		}
	}
	r := &reader{opts: opts, fn: fn}
	for len(files) > 1 {
		// Close each rotated file once read: a follower must not keep
		// the space of files the writer deletes.
		err := r.drain(ctx, files[0])
		files[0].close()
		files = files[1:]
		if err != nil {
			return r.result(err)
		}
	}
	live := files[0]
	if err := r.drain(ctx, live); err != nil || !opts.Follow {
		return r.result(err)
	}
	files = nil // follow owns live now
	return r.result(r.follow(ctx, d, live))
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

// logFile reads the lines of one file of a log.
type logFile struct {
	f    *os.File
	st   fs.FileInfo // when opened
	id   fileID
	size int64 // when last looked at
	gz   bool
	rd   *linereader.Reader
	zr   *gzip.Reader
	pos  int64 // bytes of f consumed (plain files)
	skip int   // lines to skip first (tail of a gzipped file)
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
	l := &logFile{f: f, st: st, id: idOf(st), size: st.Size(), gz: gz}
	l.reset(f)
	return l, nil
}

// reset makes l read r from its current offset, from the start of a line.
func (l *logFile) reset(r io.Reader) {
	l.pos = 0
	if l.rd == nil {
		l.rd = linereader.New(r, 64*1024, maxLine)
		return
	}
	l.rd.Reset(r)
}

func (l *logFile) close() {
	if l.zr != nil {
		l.zr.Close()
	}
	l.f.Close()
}

// next returns the next complete line without its "\n", valid until the
// next call. At the end it returns io.EOF and keeps a partial line for
// when the writer finishes it. Lines longer than maxLine are dropped.
func (l *logFile) next() ([]byte, error) {
	if l.gz && l.zr == nil {
		zr, err := gzip.NewReader(bufio.NewReader(l.f))
		if err != nil {
			return nil, io.EOF // a torn or foreign .gz: nothing to read
		}
		l.zr = zr
		l.rd.Reset(zr)
	}
	n := l.rd.N
	line, err := l.rd.Next()
	l.pos += l.rd.N - n
	switch {
	case err == nil || err == io.EOF:
		return line, err
	case l.gz:
		return nil, io.EOF // corrupt compressed data ends the file
	default:
		return nil, fmt.Errorf("read log: %w", err)
	}
}
