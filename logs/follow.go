package logs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval is how long a follower sleeps when nothing wakes it: the
// most it lags when inotify is unavailable or misses a change.
const pollInterval = 100 * time.Millisecond

// follow reads what the writer appends to f, the live file when Read found
// it, until ctx is done. When the writer has renamed f away, f has all it
// will ever have (the writer closes a file before it renames it): follow
// reads it to its end and goes on with the file written after it, found by
// identity, so a writer in another process may rotate as fast as it likes.
func (r *reader) follow(ctx context.Context, d *logDir, f *logFile) error {
	w := watch(ctx, d.path)
	defer w.close()
	defer func() { f.close() }()
	for {
		if err := r.drain(ctx, f); err != nil {
			return ended(ctx, err)
		}
		st, err := os.Stat(d.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat log: %w", err)
		}
		if err == nil && idOf(st) == f.id {
			if fst, err := f.f.Stat(); err == nil && fst.Size() < f.pos {
				// Truncated in place (max-file=1): start over.
				if _, err := f.f.Seek(0, io.SeekStart); err != nil {
					return fmt.Errorf("read log: %w", err)
				}
				f.reset(f.f)
				continue
			}
			if !r.wait(ctx, w) {
				return nil
			}
			continue
		}
		// Rotated away (or the log removed): finish f, then find the
		// file written after it.
		if err := r.drain(ctx, f); err != nil {
			return ended(ctx, err)
		}
		nf, err := d.next(ctx, f)
		if err != nil {
			return ended(ctx, err)
		}
		if nf == nil || nf == f {
			if !r.wait(ctx, w) {
				return nil
			}
			continue
		}
		f.close()
		f = nf
	}
}

// wait waits for the log to change and reports whether to go on: not when
// ctx is done or the time is past Until.
func (r *reader) wait(ctx context.Context, w *watcher) bool {
	if !r.opts.Until.IsZero() && time.Now().After(r.opts.Until) {
		return false
	}
	return w.wait(ctx)
}

// ended turns the error that a cancelled follow met into the nil that
// ends a follow.
func ended(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}

// watcher wakes a follower when a file of the log changes, by inotify on
// the log's directory, or every pollInterval where inotify is unavailable
// (out of instances: fs.inotify.max_user_instances).
type watcher struct {
	f    *os.File // the inotify instance, nil to poll
	base string   // the log's file name; its rotated files extend it
	buf  []byte
	stop func() bool
}

// inotifyOff makes followers poll, for tests of the fallback.
var inotifyOff = false

const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_MODIFY | unix.IN_CLOSE_WRITE

func watch(ctx context.Context, path string) *watcher {
	w := &watcher{base: filepath.Base(path)}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil || inotifyOff {
		if err == nil {
			unix.Close(fd)
		}
		return w
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), watchMask); err != nil {
		unix.Close(fd)
		return w
	}
	// Non-blocking, so the runtime's poller serves it and deadlines work.
	f := os.NewFile(uintptr(fd), "inotify")
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return w
	}
	w.f, w.buf = f, make([]byte, 8192)
	w.stop = context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	return w
}

// wait returns when a file of the log changes, after pollInterval at the
// latest, or when ctx is done; it reports whether ctx is still live. A
// change between the follower's last read and wait wakes it at once: the
// kernel queued the event.
func (w *watcher) wait(ctx context.Context) bool {
	if w.f == nil {
		t := time.NewTimer(pollInterval)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	// Set before checking ctx: a cancellation after the check moves
	// the deadline to now.
	if err := w.f.SetReadDeadline(time.Now().Add(pollInterval)); err != nil {
		w.close()
		return w.wait(ctx)
	}
	for ctx.Err() == nil {
		n, err := w.f.Read(w.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			w.close() // poll from now on
			break
		}
		if w.relevant(w.buf[:n]) {
			break
		}
	}
	return ctx.Err() == nil
}

// relevant reports whether events name a file of the log or say that
// events were lost.
func (w *watcher) relevant(b []byte) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(b[4:])
		n := int(binary.NativeEndian.Uint32(b[12:]))
		if unix.SizeofInotifyEvent+n > len(b) || mask&(unix.IN_Q_OVERFLOW|unix.IN_IGNORED) != 0 {
			return true
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:unix.SizeofInotifyEvent+n]), "\x00")
		if strings.HasPrefix(name, w.base) {
			return true
		}
		b = b[unix.SizeofInotifyEvent+n:]
	}
	return false
}

func (w *watcher) close() {
	if w.f == nil {
		return
	}
	w.stop()
	w.f.Close()
	w.f = nil
}
