// Package initproc is the tiny init berth puts at /sbin/docker-init when a
// container runs with --init, as Docker puts tini there: it starts the
// container's command as its only child (the leader of its own process
// group, in the terminal's foreground), forwards the signals it receives
// to the child's process group, reaps every zombie that is reparented to
// it, and exits with the child's status (128+n when signal n killed it);
// 127 and 126 when the command cannot be found or run.
//
// The berth binary is the init when it is called by the name docker-init:
// it is bind-mounted read-only into the container and never written to.
// The init is C (init.c), run from a constructor before the Go runtime
// starts, and never returns to Go: a Go init could not catch a signal sent
// in the milliseconds its runtime takes to start (PID 1 of a namespace
// drops it), and the runtime's default handler would end it with status 2
// before it asked for the signal. Importing the package is all it takes.
package initproc

/*
#cgo CFLAGS: -Wall -O2
*/
import "C"
