package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/berth-dev/berth/linereader"
)

// ReadOptions choose the events Read passes on and for how long.
type ReadOptions struct {
	// Since and Until bound the events' times; zero means unbounded.
	Since, Until time.Time
	// Follow keeps passing on events as they are appended, until ctx is
	// done or, with Until set, the clock passes Until. A following Read
	// with neither Since nor Until starts at the end of the log: only
	// events from now on, as `docker events` shows without flags.
	Follow bool
	// Filter chooses the events; the zero Filter passes all.
	Filter Filter
}

// Read calls fn for each event of the log at path in order, the rotated
// file first. A missing log is an empty one. Lines that are not events (a
// torn line) are skipped. Read ends at the first event after Until; an
// error from fn ends it and is returned.
func Read(ctx context.Context, path string, o ReadOptions, fn func(Message) error) error {
	if !o.Since.IsZero() && !o.Until.IsZero() && o.Until.Before(o.Since) {
		return invalidError{fmt.Sprintf("`since` time (%s) cannot be after `until` time (%s)",
			o.Since.Format(time.RFC3339Nano), o.Until.Format(time.RFC3339Nano))}
	}
	r := &reader{o: o, fn: fn}
	var w *watcher
	if o.Follow {
		// Watch before opening, so nothing appended in between is missed.
		w = watch(path)
		defer w.close()
	}
	old, live, err := openSet(path)
	if err != nil {
		return err
	}
	var done []*logFile // files already read or skipped, held open
	defer func() {
		for _, f := range done {
			f.close()
		}
		if live != nil {
			live.close()
		}
	}()
	fromNow := o.Follow && o.Since.IsZero() && o.Until.IsZero()
	if old != nil {
		done = append(done, old)
		if !fromNow {
			if err := r.drain(ctx, old); err != nil {
				return r.result(err)
			}
		}
	}
	if live != nil {
		if fromNow {
			err = live.skipToEnd()
		} else {
			err = r.drain(ctx, live)
		}
		if err != nil {
			return r.result(err)
		}
	}
	if !o.Follow {
		return nil
	}
	return r.result(r.follow(ctx, path, w, &live, &done))
}

// errDone ends a read early without error: an event past Until.
var errDone = errors.New("done")

type reader struct {
	o  ReadOptions
	fn func(Message) error
}

func (r *reader) result(err error) error {
	if errors.Is(err, errDone) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// handle decodes, bounds and filters one line and passes it on.
func (r *reader) handle(line []byte) error {
	var m Message
	if err := json.Unmarshal(line, &m); err != nil || m.Type == "" {
		return nil // not an event: a torn line
	}
	t := m.TimeNano
	if t == 0 {
		t = m.Time * int64(time.Second)
	}
	if !r.o.Until.IsZero() && t > r.o.Until.UnixNano() {
		return errDone
	}
	if !r.o.Since.IsZero() && t < r.o.Since.UnixNano() {
		return nil
	}
	if !r.o.Filter.Match(m) {
		return nil
	}
	return r.fn(m)
}

// drain passes on every complete line of f up to its current end.
func (r *reader) drain(ctx context.Context, f *logFile) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := f.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := r.handle(line); err != nil {
			return err
		}
	}
}

// logFile reads the lines of one file of the log.
type logFile struct {
	f  *os.File
	st fs.FileInfo
	rd *linereader.Reader
}

// openLog opens a file of the log; a missing one is (nil, nil).
func openLog(name string) (*logFile, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", classify(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open event log: %w", classify(err))
	}
	// Append writes lines shorter than maxLine; a longer one is not an
	// event.
	return &logFile{f: f, st: st, rd: linereader.New(f, 64<<10, maxLine-1)}, nil
}

func (l *logFile) close() { l.f.Close() }

// is reports whether l is the file st describes.
func (l *logFile) is(st fs.FileInfo) bool { return l != nil && st != nil && os.SameFile(l.st, st) }

// skipToEnd moves past everything in the file now, up to the end of its
// last complete line.
func (l *logFile) skipToEnd() error {
	size, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("read event log: %w", classify(err))
	}
	// Back to just after the last newline: a line being written now is
	// still read whole.
	buf := make([]byte, 4096)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		n, err := l.f.ReadAt(buf[:end-start], start)
		if err != nil && err != io.EOF {
			return fmt.Errorf("read event log: %w", classify(err))
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				_, err := l.f.Seek(start+int64(i)+1, io.SeekStart)
				l.rd.Reset(l.f)
				return err
			}
		}
		end = start
	}
	_, err = l.f.Seek(0, io.SeekStart)
	l.rd.Reset(l.f)
	return err
}

// next returns the next complete line without its "\n", valid until the
// next call. At the end it returns io.EOF and keeps a partial line for
// when its writer finishes it. Lines of maxLine bytes or more are dropped.
func (l *logFile) next() ([]byte, error) {
	line, err := l.rd.Next()
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read event log: %w", classify(err))
	}
	return line, err
}

// openSet opens the rotated and the live file of the log (either nil when
// missing) as one consistent pair: it retries while a rotation moves them.
func openSet(path string) (old, live *logFile, err error) {
	for attempt := 0; ; attempt++ {
		if live, err = openLog(path); err != nil {
			return nil, nil, err
		}
		if old, err = openLog(path + ".1"); err != nil {
			if live != nil {
				live.close()
			}
			return nil, nil, err
		}
		if attempt >= 50 || stable(path, old, live) {
			return old, live, nil
		}
		for _, f := range []*logFile{old, live} {
			if f != nil {
				f.close()
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// stable reports whether old and live are still the files under their
// names, and live is not missing while a rotation is under way.
func stable(path string, old, live *logFile) bool {
	for _, c := range []struct {
		name string
		f    *logFile
	}{{path, live}, {path + ".1", old}} {
		st, err := os.Stat(c.name)
		switch {
		case c.f == nil && err == nil:
			return false // created since we looked
		case c.f != nil && !c.f.is(st):
			return false // renamed since we opened it
		}
	}
	return live != nil || old == nil
}
