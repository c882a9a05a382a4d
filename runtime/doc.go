// Package runtime runs OCI bundles: berth's own low-level container runtime,
// the job runc and crun do.
//
// The parent side (Create, Start, Kill, Delete, Exec, ...) keeps one
// directory per container under the state root, holding state.json (written
// atomically) and, until the container is started, exec.fifo. The child side
// (Init) runs in a re-executed, sealed copy of the berth binary after the
// nsexec constructor has put it into its namespaces.
//
// Protocol between the runtime (parent) and init (child) on one socketpair.
// The nsexec constructor speaks first (see package nsexec); then frames of
// [u32 length][JSON message], file descriptors riding along as SCM_RIGHTS:
//
//	parent                            init
//	bootstrap          -->            [nsexec: join, unshare, fork]
//	                   <--  'U' pid   [write uid_map/gid_map]
//	'A'                -->
//	                   <--  'P' pid   [start moving pid into the cgroup,
//	                                   unless CLONE_INTO_CGROUP put it there]
//	config             -->            [mounts, devices; cgroupns first
//	                                   unless the move is pending on v1]
//	                   <--  cgroup    (while the move is pending; "early"
//	                                   on v2 before the mounts, else after)
//	ok                 -->            [cgroupns]
//	                   <--  hooks     [parent runs prestart, createRuntime]
//	ok                 -->            [createContainer hooks, pivot_root,
//	                                   hostname, sysctl, paths, rlimits,
//	                                   user, caps, seccomp]
//	                   <--  seccomp + listener fd (only with SCMP_ACT_NOTIFY)
//	ok                 -->
//	                   <--  ready     [close socket, block opening exec.fifo]
//
// Any message from init may be replaced by {"type":"error"}; init then exits
// 1 and the parent removes everything it made.
package runtime
