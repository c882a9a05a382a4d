// Package mount describes mounts as data and performs them.
//
// A Mount is a serialized mount(2) call: a filesystem type, a source and the
// options that mount(8) would take. Components that know what should be
// mounted (snapshotters) emit Mounts; components that mount things (the
// runtime, the unpacker, tests) consume them with Mount, All or
// WithTempMount. Keeping the boundary as plain values makes it printable,
// diffable and testable, as containerd's core/mount does.
package mount

import (
	"fmt"
	"strings"
)

// Mount is a serialized mount(2) call.
//
// Type is the filesystem type ("overlay", "tmpfs", or "bind" for bind
// mounts, whose type the kernel ignores). Source is the device or directory.
// Options are mount(8)-style options: the ones that name a mount flag
// ("ro", "nosuid", "rbind", "rprivate", ...) become flags, every other one
// is passed to the filesystem as data ("lowerdir=...", "size=64m").
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// String renders m like a line of mount(8)'s command, for errors and logs.
func (m Mount) String() string {
	return fmt.Sprintf("%s on %s (%s)", m.Source, m.Type, strings.Join(m.Options, ","))
}

// ReadOnly reports whether m carries the "ro" option.
func (m Mount) ReadOnly() bool {
	for _, o := range m.Options {
		if o == "ro" {
			return true
		}
	}
	return false
}
