package logs

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// How a reader finds its way through a log that rotates under it.
//
// The files of a log have no names of their own: the Writer renames the
// live file to path.1, path.1 to path.2 and so on, and may replace path.K
// by path.K.gz. A reader therefore knows a file by its identity (device and
// inode, which stay fixed while the reader holds the file open) and uses
// names only to order files: at any instant the names order the files by
// age (path newest, then path.1, path.2 …), because the Writer renames
// every file into a name the previous step vacated, oldest first.
//
// Looking at the names is not atomic, so the reader looks twice, and holds
// open the files it goes by in between. An open file keeps its inode
// number, so seeing it under the same name in both passes means that it
// stayed there (files only move to older names); a name empty in both
// passes stayed empty, since a file moving through it would have to stop
// at a later name of the range or pass the open file that bounds it. Two
// agreeing passes are thus one state the log really had. A file not held
// open is never known by its inode number alone: the numbers of deleted
// files come back at once when the writer rotates every few ms.

// fileID is a file's identity: its device and inode numbers. The zero
// fileID stands for no file.
type fileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func idOf(st fs.FileInfo) fileID {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileID{Dev: uint64(s.Dev), Ino: s.Ino}
	}
	return fileID{}
}

// source is the plain file a rotated file was gzipped from, as the Writer
// records it in the gzip header.
type source struct {
	ID   fileID `json:"id"`
	Size int64  `json:"size"`
}

// slot is what one position of the log holds: the live file (position 0)
// or path.K and path.K.gz (position K), each zero when absent. Both forms
// exist together only while the Writer compresses path.K.
type slot struct {
	plain, gz fileID
	src       source // of gz, when its header says
}

func (s slot) empty() bool { return s.plain == (fileID{}) && s.gz == (fileID{}) }

// holds reports whether s holds f, in its own form or, for a plain file,
// gzipped since it was opened.
func (s slot) holds(f *logFile) bool {
	if s.plain == f.id || s.gz == f.id {
		return true
	}
	return !f.gz && s.src.ID == f.id && s.src.Size == f.size
}

// logDir finds the files of the log at path.
type logDir struct{ path string }

func newLogDir(path string) *logDir { return &logDir{path: path} }

func (d *logDir) name(k int, gz bool) string {
	if k == 0 {
		return d.path
	}
	return rotated(d.path, k, gz)
}

// stat returns the identity of the file at name, zero if there is none.
func stat(name string) (fileID, error) {
	st, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return fileID{}, nil
	}
	if err != nil {
		return fileID{}, fmt.Errorf("stat log: %w", err)
	}
	return idOf(st), nil
}

// sourceOf reads from a gzip file's header which plain file it was made
// from; zero if it does not say (another writer). It is read afresh each
// time: inode numbers of deleted files come back, so a gzip file's
// identity, unless it is held open, does not say which one it is.
func sourceOf(f *os.File) source {
	var src source
	if zr, err := gzip.NewReader(bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<16), 512)); err == nil {
		var meta gzipMeta
		if json.Unmarshal(zr.Extra, &meta) == nil && meta.Source != nil {
			src = *meta.Source
		}
	}
	return src
}

// probe looks at the names of position k; with src it also reads the
// source of a gzip file there (plain files are their own source).
func (d *logDir) probe(k int, src bool) (slot, error) {
	var s slot
	var err error
	if s.plain, err = stat(d.name(k, false)); err != nil || k == 0 {
		return s, err
	}
	if !src || s.plain != (fileID{}) {
		s.gz, err = stat(d.name(k, true))
		return s, err
	}
	f, err := os.Open(d.name(k, true))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return s, fmt.Errorf("stat log: %w", err)
	}
	s.gz, s.src = idOf(st), sourceOf(f)
	return s, nil
}

// scan probes positions newest first from position from on, until stop
// says so, position to (if not -1) or the end of the log: two empty
// positions in a row, since rotation leaves at most one gap.
func (d *logDir) scan(from, to int, src bool, stop func(slot) bool) ([]slot, error) {
	var slots []slot
	for k := from; k != to; k++ {
		s, err := d.probe(k, src)
		if err != nil {
			return nil, err
		}
		if to < 0 && len(slots) > 0 && s.empty() && slots[len(slots)-1].empty() {
			break
		}
		slots = append(slots, s)
		if stop != nil && stop(s) {
			break
		}
	}
	return slots, nil
}

// sameFiles reports whether two scans saw the same files (sources aside).
func sameFiles(a, b []slot) bool {
	return slices.EqualFunc(a, b, func(x, y slot) bool { return x.plain == y.plain && x.gz == y.gz })
}

// pause waits before another attempt at a log that changed while looked
// at: not at all at first, then up to 10 ms. It reports false when ctx is
// done.
func pause(ctx context.Context, attempt int) bool {
	if attempt < 3 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(time.Duration(min(attempt-2, 10)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// maxAttempts bounds the tries at a consistent view of a log; a writer
// would have to rotate for seconds on end, every few ms, to exhaust it.
const maxAttempts = 500

// openAll opens all the files of the log, oldest first, the live one last,
// as one state the log really had.
func (d *logDir) openAll(ctx context.Context) ([]*logFile, error) {
	files, _, err := d.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("log %s: %w", d.path, errdefs.ErrNotFound)
	}
	slices.Reverse(files)
	return files, nil
}

// snapshot opens the files of the log, newest first, and returns them
// with what each position held. It opens each position's file (the plain
// one while both forms exist) and then probes the names again; as the
// open files keep their inode numbers, the same numbers in the second
// pass are the same files, and the two passes one state of the log.
func (d *logDir) snapshot(ctx context.Context) ([]*logFile, []slot, error) {
	for attempt := 0; pause(ctx, attempt); attempt++ {
		files, seen, err := d.openPass()
		if err != nil {
			return nil, nil, err
		}
		again, err := d.scan(0, -1, false, nil)
		if err != nil {
			closeAll(files)
			return nil, nil, err
		}
		// Without the live file the writer is between renaming it and
		// creating the next; wait for that unless it stays so.
		settled := !seen[0].empty() || len(files) == 0 || attempt >= 20
		if sameFiles(seen, again) && settled {
			return files, seen, nil
		}
		closeAll(files)
		if attempt == maxAttempts {
			return nil, nil, fmt.Errorf("log %s rotates too fast to read: %w", d.path, errdefs.ErrUnavailable)
		}
	}
	return nil, nil, ctx.Err()
}

// openPass is a scan that opens the file of each position, taking its
// identity (and a gzip file's source) from the open file.
func (d *logDir) openPass() ([]*logFile, []slot, error) {
	var files []*logFile
	var slots []slot
	for k := 0; ; k++ {
		s, err := d.probe(k, false)
		if err != nil {
			closeAll(files)
			return nil, nil, err
		}
		if k >= 1 && s.empty() && slots[k-1].empty() {
			return files, slots, nil
		}
		if !s.empty() {
			gz := s.plain == (fileID{})
			f, err := openLog(d.name(k, gz), gz)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				s = slot{} // moved on: the second pass will differ
			case err != nil:
				closeAll(files)
				return nil, nil, fmt.Errorf("open log: %w", err)
			case gz:
				files = append(files, f)
				s.gz, s.src = f.id, sourceOf(f.f)
			default:
				files = append(files, f)
				s.plain = f.id
			}
		}
		slots = append(slots, s)
	}
}

func closeAll(files []*logFile) {
	for _, f := range files {
		f.close()
	}
}

// next finds the file written after cur, which the writer has rotated
// away, and opens it: the live file or a rotated one, plain or gzipped. If
// cur is gone (the reader fell more than max-file rotations behind) it is
// the oldest file left, and what was between is lost, as with Docker. It
// reports nil when there is no such file yet or the log kept changing.
func (d *logDir) next(ctx context.Context, cur *logFile) (*logFile, error) {
	st, err := cur.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat log: %w", err)
	}
	cur.size = st.Size()
	holds := func(s slot) bool { return s.holds(cur) }
	for attempt := 0; attempt < 50 && pause(ctx, attempt); attempt++ {
		// Where cur is: newest first, so that an older gzip file made
		// from an earlier file with cur's inode number comes after.
		seen, err := d.scan(0, -1, true, holds)
		if err != nil {
			return nil, err
		}
		i := len(seen) - 1
		if i < 0 || !seen[i].holds(cur) {
			if f, err := d.oldest(ctx, cur); f != nil || err != nil {
				return f, err
			}
			continue
		}
		if i == 0 {
			return cur, nil // still the live file
		}
		j := i - 1
		for j >= 0 && seen[j].empty() {
			j--
		}
		if j < 0 {
			return nil, nil // nothing newer yet: the writer is mid-rotation
		}
		// Open what is at j now, then check that between it and cur
		// the names stayed empty and cur stayed put: then at the open
		// the file was next to cur.
		f, err := d.openAt(j)
		if err != nil || f == nil {
			return nil, err
		}
		again, err := d.scan(j+1, i+1, true, nil)
		if err != nil {
			f.close()
			return nil, err
		}
		if slices.EqualFunc(seen[j+1:], again, func(x, y slot) bool { return x.empty() && y.empty() || x.holds(cur) && y.holds(cur) }) {
			return f, nil
		}
		f.close()
	}
	return nil, nil
}

// openAt opens the file at position k, nil if there is none.
func (d *logDir) openAt(k int) (*logFile, error) {
	for _, gz := range []bool{false, true} {
		f, err := openLog(d.name(k, gz), gz)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open log: %w", err)
		}
	}
	return nil, nil
}

// oldest returns the oldest file of the log if cur is no longer in it,
// nil if it is.
func (d *logDir) oldest(ctx context.Context, cur *logFile) (*logFile, error) {
	files, seen, err := d.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 || slices.ContainsFunc(seen, func(s slot) bool { return s.holds(cur) }) {
		closeAll(files)
		return nil, nil
	}
	closeAll(files[:len(files)-1])
	return files[len(files)-1], nil
}
