package engine

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/meta"
)

// Leases that die with their process.
//
// A pull's lease protects what it has fetched so far from GC, but only
// while the pull runs: its id names the process that holds it,
//
//	<kind>-<pid>-<start>-<random>
//
// where start is the process's start time (field 22 of /proc/<pid>/stat,
// in clock ticks since boot), so that a pid the kernel has since given to
// another process does not pass for the holder. GC counts a lease whose
// holder is gone as expired, exactly as one whose time is up; the lease's
// expiry stays as a backstop for ids without an owner (older berths, or
// no /proc) and for holders GC cannot see (another pid namespace
// sharing the root would look gone — berth does not support that).

// newLeaseID returns a fresh lease id of kind owned by this process, or
// an ownerless "<kind>-<random>" when the process's start time is unknown.
func newLeaseID(kind string) string {
	pid := os.Getpid()
	start, err := procStartTime(pid)
	if err != nil {
		return kind + "-" + randomHex(8)
	}
	return fmt.Sprintf("%s-%d-%d-%s", kind, pid, start, randomHex(8))
}

// leaseOwner parses the owner out of a lease id made by newLeaseID; ok
// is false for ids without one.
func leaseOwner(id string) (pid int, start uint64, ok bool) {
	f := strings.Split(id, "-")
	if len(f) != 4 {
		return 0, 0, false
	}
	p, err := strconv.Atoi(f[1])
	if err != nil || p <= 0 {
		return 0, 0, false
	}
	s, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return p, s, true
}

// leaseDead reports whether l no longer protects anything at now: its
// time is up, or the process its id names has exited (or its pid now
// names a process started at another time).
func leaseDead(l meta.Lease, now time.Time) bool {
	if l.Expired(now) {
		return true
	}
	pid, start, ok := leaseOwner(l.ID)
	if !ok {
		return false
	}
	got, err := procStartTime(pid)
	if err != nil {
		// Only a process that is gone is dead; if /proc cannot say (not
		// mounted, say), the expiry decides.
		return errdefs.IsNotFound(err)
	}
	return got != start
}

// procStartTime returns the start time of process pid, in clock ticks
// since boot (field 22 of /proc/<pid>/stat); errdefs.ErrNotFound if no
// such process exists.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if os.IsNotExist(err) {
		if _, serr := os.Stat("/proc/self/stat"); serr != nil {
			return 0, fmt.Errorf("no /proc: %v: %w", serr, errdefs.ErrUnavailable)
		}
		return 0, fmt.Errorf("process %d: %w", pid, errdefs.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("process %d: %v: %w", pid, err, errdefs.ErrUnavailable)
	}
	// Field 2, the command, is in parentheses and may hold spaces and
	// parentheses itself: fields 3 on follow the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("process %d: malformed stat: %w", pid, errdefs.ErrFailedPrecondition)
	}
	f := strings.Fields(string(data[i+1:]))
	const field = 22 - 3
	if len(f) <= field {
		return 0, fmt.Errorf("process %d: stat has %d fields: %w", pid, len(f)+2, errdefs.ErrFailedPrecondition)
	}
	start, err := strconv.ParseUint(f[field], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("process %d: start time %q: %w", pid, f[field], errdefs.ErrFailedPrecondition)
	}
	return start, nil
}
