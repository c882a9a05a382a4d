package runtime

import (
	"io/fs"
	"sync"
	"syscall"
)

// stateMemo keeps the last decoded state.json of each container a Runtime
// has written or read, so that a long-lived caller (the monitor runs
// create, start, state and delete in one process) decodes the spec inside
// it once, not at every step. An entry is used only while the file is the
// very one it came from: state files are replaced by rename, so a new
// write is a new inode, and inode, size and modification time together
// tell it apart. Entries hold the State as written; callers get a copy of
// the struct and must treat its Config as read-only.
type stateMemo struct {
	mu      sync.Mutex
	entries map[string]memoEntry
}

type memoEntry struct {
	ino, size, mtime int64
	st               State
}

func identity(fi fs.FileInfo) (ino, size, mtime int64) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = int64(sys.Ino)
	}
	return ino, fi.Size(), fi.ModTime().UnixNano()
}

// get returns a copy of the state memoized for path if fi is still the
// file it was read from, or nil.
func (m *stateMemo) get(path string, fi fs.FileInfo) *State {
	ino, size, mtime := identity(fi)
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[path]
	if !ok || ino == 0 || e.ino != ino || e.size != size || e.mtime != mtime {
		return nil
	}
	st := e.st
	return &st
}

// put memoizes st as the content of the file fi describes at path.
func (m *stateMemo) put(path string, fi fs.FileInfo, st *State) {
	ino, size, mtime := identity(fi)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[string]memoEntry{}
	}
	m.entries[path] = memoEntry{ino, size, mtime, *st}
}
