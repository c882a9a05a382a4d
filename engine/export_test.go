package engine

import "time"

// SetGCGrace sets how old an unpack snapshot must be for GC to take it,
// for tests that know no pull is running; it returns the undo.
func SetGCGrace(d time.Duration) func() {
	old := gcGrace
	gcGrace = d
	return func() { gcGrace = old }
}
