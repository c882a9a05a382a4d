package events

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// pollInterval is how often a follower looks at the log when it
	// cannot watch it with inotify.
	pollInterval = 100 * time.Millisecond
	// rescanInterval is how often a watching follower looks anyway, in
	// case a file system leaves a change unreported.
	rescanInterval = time.Second
	// untilGrace is how long past Until a follower keeps reading: an
	// event stamped just before Until may still be on its way to the file.
	untilGrace = 20 * time.Millisecond
)

// follow passes on what is appended to the log from where Read left off:
// the end of *cur (nil when the log had no live file), with *done the files
// already read or skipped, held open so that their identity stays theirs.
func (r *reader) follow(ctx context.Context, path string, w *watcher, cur **logFile, done *[]*logFile) error {
	var until <-chan time.Time
	if !r.o.Until.IsZero() {
		t := time.NewTimer(time.Until(r.o.Until) + untilGrace)
		defer t.Stop()
		until = t.C
	}
	interval := rescanInterval
	if w == nil {
		interval = pollInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	wake, dead := w.channels()
	for {
		if err := r.catchUp(ctx, path, cur, done); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-until:
			return r.catchUp(ctx, path, cur, done)
		case <-wake:
		case <-dead: // the watch is gone (the directory was removed): poll
			wake, dead = nil, nil
			tick.Reset(pollInterval)
		case <-tick.C:
		}
	}
}

// catchUp reads *cur to its end, and on to the files that followed it.
func (r *reader) catchUp(ctx context.Context, path string, cur **logFile, done *[]*logFile) error {
	for {
		if *cur != nil {
			if err := r.drain(ctx, *cur); err != nil {
				return err
			}
		}
		moved, err := r.advance(ctx, path, cur, done)
		if err != nil || !moved {
			return err
		}
	}
}

// advance moves *cur on to the live file when path names a new one, and
// reports whether it did. The old one was rotated and is frozen: it is
// finished first. Then the live file and path.1 are opened as a pair the
// writers really had; path.1 is read first unless it is a file already
// read (mostly the one just finished; another one only when the log
// rotated twice since the last look — a third rotation in that time would
// lose a file).
func (r *reader) advance(ctx context.Context, path string, cur **logFile, done *[]*logFile) (bool, error) {
	st, err := os.Stat(path)
	if err != nil || (*cur).is(st) {
		return false, nil // unchanged, not created yet, or mid-rotation
	}
	if c := *cur; c != nil {
		*cur = nil
		*done = append(*done, c)
		if err := r.drain(ctx, c); err != nil {
			return false, err
		}
	}
	old, live, err := openSet(path)
	if err != nil {
		return false, err
	}
	*cur = live // nil if it is being replaced right now: the next look finds it
	if old != nil {
		seen := false
		for _, d := range *done {
			seen = seen || d.is(old.st)
		}
		*done = append(*done, old)
		if !seen {
			if err := r.drain(ctx, old); err != nil {
				return false, err
			}
		}
	}
	// Only the file now named .1 can be confused with a new one later.
	for _, d := range *done {
		if d != old {
			d.close()
		}
	}
	*done = (*done)[:0]
	if old != nil {
		*done = append(*done, old)
	}
	return live != nil, nil
}

// watcher wakes a follower when inotify reports a change to the log's
// files in their directory. A nil watcher never wakes.
type watcher struct {
	f         *os.File
	live, old string
	wake      chan struct{}
	dead      chan struct{}
}

// watch watches path's directory, or returns nil when inotify is
// unavailable (no instances left, a file system without it, no directory
// yet): the follower then polls.
func watch(path string) *watcher {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
		unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), mask); err != nil {
		unix.Close(fd)
		return nil
	}
	// Non-blocking, so os.File puts it in the runtime's poller and Close
	// wakes a blocked Read.
	w := &watcher{
		f:    os.NewFile(uintptr(fd), "inotify"),
		live: filepath.Base(path), old: filepath.Base(path) + ".1",
		wake: make(chan struct{}, 1), dead: make(chan struct{}),
	}
	go w.run()
	return w
}

func (w *watcher) channels() (wake, dead <-chan struct{}) {
	if w == nil {
		return nil, nil
	}
	return w.wake, w.dead
}

func (w *watcher) close() {
	if w != nil {
		w.f.Close() // ends run
	}
}

func (w *watcher) run() {
	defer close(w.dead)
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		wake, gone := w.relevant(buf[:n])
		if wake {
			select {
			case w.wake <- struct{}{}:
			default: // a wake-up is pending already
			}
		}
		if gone {
			return
		}
	}
}

// relevant reads a buffer of inotify events: wake says one concerns the
// log (or events were lost), gone that the watch ended.
func (w *watcher) relevant(b []byte) (wake, gone bool) {
	for len(b) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(b[4:8])
		n := int(binary.NativeEndian.Uint32(b[12:16]))
		if unix.SizeofInotifyEvent+n > len(b) {
			return true, gone
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:unix.SizeofInotifyEvent+n]), "\x00")
		b = b[unix.SizeofInotifyEvent+n:]
		if mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 {
			wake, gone = true, true
		}
		if mask&unix.IN_Q_OVERFLOW != 0 || name == w.live || name == w.old {
			wake = true
		}
	}
	return wake, gone
}
