// Package nsexec joins and creates namespaces before the Go runtime starts.
//
// A Go process is multi-threaded from its first instruction, and the kernel
// refuses setns(2) into mount and user namespaces and unshare(CLONE_NEWUSER)
// for a multi-threaded caller. So, as runc's nsenter does, a C constructor
// runs first in every berth process. It does nothing unless the environment
// names a bootstrap socket in _BERTH_INIT; then it reads the bootstrap, joins
// and creates namespaces, forks when a pid or time namespace needs a new
// process, reports the resulting pid to the runtime, and returns into Go in
// the process that will become the container's init.
//
// Bootstrap, runtime → constructor, on the socket (little-endian):
//
//	u32 payload length
//	payload: records of [u16 type][u16 0][u32 len][len bytes]
//	  1 flags    u32: CLONE_NEW* namespaces to create (user first, cgroup left to Go)
//	  2 join     "<type>:<path>": a namespace to join by path (user is joined first)
//	  3 pidfd    u32 pid + u32 flags: try setns(pidfd_open(pid), flags) before the joins
//	  4 fork     u32: 1 = fork once the namespaces are in place
//	  5 timens   the text to write to /proc/self/timens_offsets
//
// Constructor → runtime, same socket:
//
//	'U' u32 pid    a user namespace was created: write its uid/gid maps,
//	               then answer one byte 'A'
//	'P' u32 pid    the pid of the process that continues into Go (host view)
//	'E' u32 n msg  the constructor failed; it exits 1
//
// After 'P' the socket belongs to the Go side of init (package runtime).
package nsexec

/*
#cgo CFLAGS: -Wall -O2
extern void berth_nsexec(void);
void __attribute__((constructor)) berth_nsexec_init(void) { berth_nsexec(); }
*/
import "C"

// Record types of the bootstrap, shared with the runtime that writes them.
const (
	RecFlags  = 1
	RecJoin   = 2
	RecPidfd  = 3
	RecFork   = 4
	RecTimens = 5
)

// Messages the constructor sends to the runtime.
const (
	MsgUsermap = 'U'
	MsgPid     = 'P'
	MsgError   = 'E'
	MsgAck     = 'A'
)

// EnvInit names the environment variable holding the bootstrap socket's fd.
const EnvInit = "_BERTH_INIT"
