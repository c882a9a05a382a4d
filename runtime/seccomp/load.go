package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
)

// Load compiles p and installs it on the calling thread with
// seccomp(SECCOMP_SET_MODE_FILTER) and the profile's flags.
// If any rule (or the default) uses SCMP_ACT_NOTIFY it adds
// SECCOMP_FILTER_FLAG_NEW_LISTENER and returns the listener fd; otherwise -1.
// The caller has set no_new_privs or holds CAP_SYS_ADMIN; the caller locked
// its OS thread.
//
// SECCOMP_FILTER_FLAG_TSYNC applies the filter to every thread of the
// process; with a listener it needs SECCOMP_FILTER_FLAG_TSYNC_ESRCH (Linux
// 5.7), which Load adds. SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV means
// something only with a listener and is dropped when there is none. An
// action or flag the kernel lacks is an error wrapping
// errdefs.ErrNotImplemented.
func Load(p *specs.LinuxSeccomp) (listenerFd int, err error) {
	c, err := compile(p)
	if err != nil {
		return -1, err
	}
	for _, act := range c.actions {
		if !actionAvailable(act) {
			return -1, fmt.Errorf("loading seccomp filter: action %s: %w", actionName(act), errdefs.ErrNotImplemented)
		}
	}
	flags, err := filterFlags(p.Flags, c.notify)
	if err != nil {
		return -1, fmt.Errorf("loading seccomp filter: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(c.prog)), Filter: &c.prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(c.prog)
	if errno != 0 {
		return -1, fmt.Errorf("loading seccomp filter: %w", errno)
	}
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		return int(r), nil
	}
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && r != 0 {
		// Without TSYNC_ESRCH the kernel names the thread it could not
		// synchronise instead of failing.
		return -1, fmt.Errorf("loading seccomp filter: thread %d cannot take the filter: %w", r, errdefs.ErrFailedPrecondition)
	}
	return -1, nil
}

// Flags returns the filter flags a profile may ask for that the kernel
// supports.
func Flags() []string {
	var out []string
	for _, f := range knownFlags {
		if flagSupported(flagBits[f]) {
			out = append(out, string(f))
		}
	}
	return out
}

var flagBits = map[specs.LinuxSeccompFlag]uintptr{
	flagTSync:                              unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// filterFlags returns the seccomp(2) flags for a profile's flags.
func filterFlags(names []specs.LinuxSeccompFlag, notify bool) (uintptr, error) {
	var flags uintptr
	for _, f := range names {
		bit, ok := flagBits[f]
		if !ok {
			return 0, fmt.Errorf("unknown flag %q: %w", f, errdefs.ErrInvalidArgument)
		}
		if bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV && !notify {
			continue
		}
		if !flagSupported(bit) {
			return 0, fmt.Errorf("flag %s: not supported by this kernel: %w", f, errdefs.ErrNotImplemented)
		}
		flags |= bit
	}
	if notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
			if !flagSupported(unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH) {
				return 0, fmt.Errorf("SECCOMP_FILTER_FLAG_TSYNC with SCMP_ACT_NOTIFY needs Linux 5.7: %w", errdefs.ErrNotImplemented)
			}
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		}
	}
	return flags, nil
}

// The kernel is probed once, on first use.
var (
	probeOnce    sync.Once
	flagsAvail   map[uintptr]bool
	actionsAvail map[uint32]bool // nil when the kernel predates SECCOMP_GET_ACTION_AVAIL
)

func probeKernel() {
	flagsAvail = map[uintptr]bool{}
	for _, bit := range []uintptr{
		unix.SECCOMP_FILTER_FLAG_TSYNC, unix.SECCOMP_FILTER_FLAG_LOG,
		unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER,
		unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH, unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
	} {
		try := bit
		if bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
			try |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER // the kernel refuses it alone
		}
		// With a NULL program a kernel that knows the flags gets as far
		// as copying the program and fails with EFAULT; one that does not
		// says EINVAL. Nothing is installed either way.
		_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, try, 0)
		flagsAvail[bit] = errno == unix.EFAULT
	}

	actionsAvail = map[uint32]bool{}
	for _, a := range actionNames {
		v := actionValue(a, 0)
		_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&v)))
		if errno != 0 && !errors.Is(errno, unix.EOPNOTSUPP) {
			actionsAvail = nil // Linux < 4.14
			return
		}
		actionsAvail[v] = errno == 0
	}
}

func flagSupported(bit uintptr) bool {
	probeOnce.Do(probeKernel)
	return flagsAvail[bit]
}

// actionAvailable reports whether the kernel knows the action of the
// SECCOMP_RET_* value v.
func actionAvailable(v uint32) bool {
	probeOnce.Do(probeKernel)
	v &= unix.SECCOMP_RET_ACTION_FULL
	if actionsAvail == nil {
		switch v {
		case unix.SECCOMP_RET_KILL_THREAD, unix.SECCOMP_RET_TRAP, unix.SECCOMP_RET_ERRNO,
			unix.SECCOMP_RET_TRACE, unix.SECCOMP_RET_ALLOW:
			return true
		}
		return false
	}
	return actionsAvail[v]
}
