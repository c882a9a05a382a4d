package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// MaxSize is the size at which Append renames the live file to path+".1"
// and starts a new one, which bounds the log to about twice this.
const MaxSize = 4 << 20

// maxLine bounds one event's line: Append refuses a longer message and
// Read skips a longer line.
const maxLine = 1 << 20

// lockTimeout bounds how long Append waits for the log's lock. A writer
// holds it for one write; a holder that stops (SIGSTOP, a frozen cgroup)
// must not hang every berth command.
const lockTimeout = 10 * time.Second

// Append adds m to the log at path as one line, creating the file if it
// is missing (its directory must exist). A zero time is stamped with the
// current time under the lock, so the file's order is the events' order.
// It is safe to call from any number of goroutines and processes at once.
func Append(path string, m Message) error {
	return appendMax(path, m, MaxSize)
}

func appendMax(path string, m Message, maxSize int64) error {
	for attempt := 0; attempt < 100; attempt++ {
		done, err := appendOnce(path, &m, maxSize)
		if err != nil {
			return fmt.Errorf("append event to %s: %w", path, classify(err))
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("append event to %s: the log keeps being replaced: %w", path, errdefs.ErrUnavailable)
}

// appendOnce writes m under the lock of the file named path and reports
// true, or reports false when the file it locked is no longer the live one
// (rotated away meanwhile, or rotated by this call): the caller tries again.
func appendOnce(path string, m *Message, maxSize int64) (bool, error) {
	// O_RDWR to read the last byte; os.OpenFile adds O_CLOEXEC.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return false, err
	}
	defer f.Close() // releases the lock
	if err := lock(f); err != nil {
		return false, err
	}
	fst, err := f.Stat()
	if err != nil {
		return false, err
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !os.SameFile(st, fst)) {
		return false, nil // renamed to .1 between our open and our lock
	}
	if err != nil {
		return false, err
	}
	size := fst.Size()
	if size >= maxSize {
		// Under the lock nobody else writes to this file: rename it away
		// whole. Writers waiting for its lock will see it moved.
		if err := os.Rename(path, path+".1"); err != nil {
			return false, fmt.Errorf("rotate: %w", err)
		}
		return false, nil
	}
	stamp(m, time.Now())
	line, err := json.Marshal(m)
	if err != nil {
		return false, fmt.Errorf("encode: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(line) >= maxLine {
		return false, fmt.Errorf("event of %d bytes is too large: %w", len(line), errdefs.ErrInvalidArgument)
	}
	line = append(line, '\n')
	if size > 0 {
		// A writer that died mid-line (or a full disk) left a torn line:
		// end it, so that it stays one bad line and ours stays whole.
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			return false, err
		}
		if last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		// Take back a partial line while we still hold the lock.
		if terr := f.Truncate(size); terr != nil {
			err = errors.Join(err, terr)
		}
		return false, err
	}
	return true, nil
}

// stamp fills m's times from now when both are zero, and one from the
// other when one is.
func stamp(m *Message, now time.Time) {
	switch {
	case m.TimeNano == 0 && m.Time == 0:
		m.Time, m.TimeNano = now.Unix(), now.UnixNano()
	case m.TimeNano == 0:
		m.TimeNano = m.Time * int64(time.Second)
	case m.Time == 0:
		m.Time = m.TimeNano / int64(time.Second)
	}
}

// lock takes f's exclusive flock, waiting at most lockTimeout. It polls
// with LOCK_NB: a blocking flock cannot be given up on.
func lock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(lockTimeout)
	wait := 20 * time.Microsecond
	for {
		var lerr error
		if err := rc.Control(func(fd uintptr) {
			lerr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
		}); err != nil {
			return err
		}
		switch {
		case lerr == nil:
			return nil
		case errors.Is(lerr, unix.EINTR):
			continue
		case !errors.Is(lerr, unix.EWOULDBLOCK):
			return fmt.Errorf("lock: %w", lerr)
		case time.Now().After(deadline):
			return fmt.Errorf("lock: held by another process for %v: %w", lockTimeout, errdefs.ErrUnavailable)
		}
		time.Sleep(wait)
		wait = min(2*wait, 5*time.Millisecond)
	}
}

// classify adds an errdefs class to an error that has none.
func classify(err error) error {
	switch {
	case errors.Is(err, errdefs.ErrInvalidArgument), errors.Is(err, errdefs.ErrUnavailable):
		return err
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable) // I/O: a full disk, a read-only file system
}
