package shim

import (
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The shim is a child subreaper: the container's init and every exec'd
// process become its children once the runtime's intermediate processes
// exit. It reaps the ones it knows by pid (waitPid), never with wait(-1),
// so that the runtime's own exec.Cmd children keep their exit statuses.
// Orphans it does not know (reparented from a container that shares the
// host's pid namespace) are reaped by reapOrphans once they have stayed
// zombies for a while.

var claimed = struct {
	sync.Mutex
	pids map[int]bool
}{pids: map[int]bool{}}

// waitPid reaps pid, a child of the shim, and sends its wait status on
// the returned channel. A pid that is not our child is watched through a
// pidfd and reported as exit code 255, its status being lost.
func waitPid(pid int) <-chan unix.WaitStatus {
	claimed.Lock()
	claimed.pids[pid] = true
	claimed.Unlock()
	ch := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				waitGone(pid)
				ws = unix.WaitStatus(255 << 8)
			}
			break
		}
		claimed.Lock()
		delete(claimed.pids, pid)
		claimed.Unlock()
		ch <- ws
	}()
	return ch
}

// waitGone waits until pid no longer runs.
func waitGone(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			return
		}
	}
}

// exitCode is the code Docker reports for a wait status: the exit code,
// or 128 + the signal that killed the process.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// reapOrphans reaps zombie children that nobody claimed and that stayed
// zombies across two looks a second apart (an exec.Cmd reaps its own
// child at once). It runs for the shim's life.
func reapOrphans() {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGCHLD)
	var seen map[int]bool
	for {
		if len(seen) == 0 {
			<-sigc
		}
		time.Sleep(time.Second)
		next := map[int]bool{}
		for _, pid := range zombieChildren() {
			claimed.Lock()
			mine := claimed.pids[pid]
			claimed.Unlock()
			switch {
			case mine:
			case seen[pid]:
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			default:
				next[pid] = true
			}
		}
		seen = next
	}
}

// zombieChildren lists the shim's children that are zombies.
func zombieChildren() []int {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var zs []int
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(s)
			if err != nil {
				continue
			}
			stat, err := os.ReadFile("/proc/" + s + "/stat")
			if err != nil {
				continue
			}
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
				zs = append(zs, pid)
			}
		}
	}
	return zs
}
