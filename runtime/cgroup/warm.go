package cgroup

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Warm makes moves of processes between v1 cgroups (Apply) cheap while it
// runs, by paying in the background the wait such a move would otherwise
// make on the critical path of a container start. Call the returned stop
// once the moves are done; Warm stops by itself after a second.
//
// The kernel guards every migration with one global per-CPU rwsem
// (cgroup_threadgroup_rwsem). Its writer waits for an RCU grace period
// unless another writer held it within about the last grace period:
// 10-15 ms for a lone cgroup.procs write on a 2-CPU host, 0.1 ms for one
// right after another. Warm writes now and then every few milliseconds,
// each time moving the calling process into the cgroup it is already in
// (a migration that changes nothing), so that the first grace period
// elapses while the caller prepares the container and the lock stays
// ready for the real move.
//
// Nothing to do on a unified (v2-only) host, where init is born in its
// cgroup (clone3 with CLONE_INTO_CGROUP) and nothing migrates. Errors are
// ignored: only speed depends on it.
func Warm() (stop func()) {
	t, err := hostMounts()
	if err != nil || t.unified() {
		return func() {}
	}
	dir := warmDir(t)
	if dir == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		pid := strconv.Itoa(os.Getpid())
		tick := time.NewTicker(warmEvery)
		defer tick.Stop()
		deadline := time.After(time.Second)
		for {
			if writeFile(dir, "cgroup.procs", pid) != nil {
				return
			}
			select {
			case <-done:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}

// warmEvery is shorter than a grace period, the time the lock stays ready
// after a writer leaves.
const warmEvery = 5 * time.Millisecond

// warmDir is the directory of the caller's own cgroup in a v1 hierarchy
// other than cpuset (whose attach does the most work), or "".
func warmDir(t *mountTable) string {
	own, err := ownCgroups()
	if err != nil {
		return ""
	}
	for i := range t.v1 {
		h := &t.v1[i]
		if h.has("cpuset") {
			continue
		}
		key := h.name // "name=systemd"
		if key == "" {
			key = strings.Join(h.controllers, ",")
		}
		if p, ok := own[key]; ok {
			return h.dir(p)
		}
	}
	return ""
}
