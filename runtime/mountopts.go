package runtime

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountFlags maps mount(8) options to flags: set (true) or clear (false).
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC},
	"remount": {false, unix.MS_REMOUNT},
	"mand":    {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"lazytime": {false, unix.MS_LAZYTIME}, "nolazytime": {true, unix.MS_LAZYTIME},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
	"iversion": {false, unix.MS_I_VERSION}, "noiversion": {true, unix.MS_I_VERSION},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
}

// propagationFlags maps propagation options to their mount flags.
var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// mountOptions is a spec mount's options, sorted into their kinds.
type mountOptions struct {
	flags       uintptr
	propagation []uintptr
	data        string
	recursiveRO bool // "rro": read-only, recursively (mount_setattr)
}

func parseMountOptions(opts []string) mountOptions {
	var mo mountOptions
	var data []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				mo.flags &^= f.flag
			} else {
				mo.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[o]; ok {
			mo.propagation = append(mo.propagation, p)
			continue
		}
		switch o {
		case "rro":
			mo.recursiveRO = true
			mo.flags |= unix.MS_RDONLY
			continue
		case "tmpcopyup", "idmap", "ridmap", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec":
			// Recursive attributes and idmaps need mount_setattr;
			// tmpcopyup is crun's extension. Neither goes to mount(2).
			continue
		}
		data = append(data, o)
	}
	mo.data = strings.Join(data, ",")
	return mo
}
