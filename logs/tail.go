package logs

import (
	"bytes"
	"fmt"
	"io"
)

// tail positions files (oldest first) so that reading them yields only the
// last n records: plain files are searched backwards from their end, so a
// tail of a GB log reads a few blocks; a gzipped file, which cannot seek,
// is counted through and told how many lines to skip.
func tail(files []*logFile, n int) error {
	remaining := n
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		if remaining == 0 {
			if err := f.toEnd(); err != nil {
				return err
			}
			continue
		}
		if f.gz {
			count, err := countLines(f)
			if err != nil {
				return err
			}
			if count >= remaining {
				f.skip, remaining = count-remaining, 0
			} else {
				remaining -= count
			}
			continue
		}
		off, found, err := tailOffset(f, remaining)
		if err != nil {
			return err
		}
		if _, err := f.f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("seek log: %w", err)
		}
		f.reset(f.f)
		f.pos = off
		remaining -= found
	}
	return nil
}

// toEnd makes f yield nothing: a rotated file is skipped, the live file is
// positioned at its last newline, so a follower sees only what comes next.
func (f *logFile) toEnd() error {
	if f.gz {
		if _, err := f.f.Seek(0, io.SeekEnd); err != nil {
			return fmt.Errorf("seek log: %w", err)
		}
		f.gz = false
		f.reset(f.f)
		return nil
	}
	off, _, err := tailOffset(f, 0)
	if err != nil {
		return err
	}
	if _, err := f.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seek log: %w", err)
	}
	f.reset(f.f)
	f.pos = off
	return nil
}

// tailOffset finds where the last n complete lines of the plain file f
// begin, reading backwards in blocks. A partial last line (no "\n" yet)
// is not counted and is left after the offset. found is how many complete
// lines lie after the offset (fewer than n if the file holds fewer).
func tailOffset(f *logFile, n int) (off int64, found int, err error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("stat log: %w", err)
	}
	const block = 32 * 1024
	buf := make([]byte, block)
	end := st.Size()
	newlines := 0 // the (n+1)-th newline from the end precedes the n lines
	for end > 0 {
		start := max(end-block, 0)
		b := buf[:end-start]
		if _, err := f.f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, 0, fmt.Errorf("read log: %w", err)
		}
		for {
			i := bytes.LastIndexByte(b, '\n')
			if i < 0 {
				break
			}
			newlines++
			if newlines == n+1 {
				return start + int64(i) + 1, n, nil
			}
			b = b[:i]
		}
		end = start
	}
	return 0, newlines, nil
}

// countLines counts the complete lines of a gzipped file and rewinds it.
func countLines(f *logFile) (int, error) {
	count := 0
	for {
		_, err := f.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		count++
	}
	if f.zr != nil {
		f.zr.Close()
		f.zr = nil
	}
	if _, err := f.f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek log: %w", err)
	}
	f.reset(f.f)
	return count, nil
}
