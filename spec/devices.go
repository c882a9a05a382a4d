package spec

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// devices adds --device nodes to linux.devices with allow rules, and with
// --privileged every host device and a rule allowing all.
func devices(l *specs.Linux, req Request) error {
	if req.Privileged {
		l.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		host, err := hostDevices("/dev")
		if err != nil {
			return err
		}
		l.Devices = append(l.Devices, host...)
	}
	for _, d := range req.Devices {
		access := d.Access
		if access == "" {
			access = "rwm"
		}
		if strings.Trim(access, "rwm") != "" {
			return invalid("invalid device mode: %s", access)
		}
		dst := d.Container
		if dst == "" {
			dst = d.Host
		}
		found, err := deviceNodes(d.Host, dst)
		if err != nil {
			return invalid("error gathering device information while adding custom device %q: %s", d.Host, unwrapPath(err))
		}
		for _, dev := range found {
			if !req.Privileged {
				major, minor := dev.Major, dev.Minor
				l.Resources.Devices = append(l.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: access})
			}
			l.Devices = append(l.Devices, dev)
		}
	}
	return nil
}

// unwrapPath drops the "stat PATH: " from a PathError, as Docker prints it.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// deviceNodes describes the device node at host, or every node under a
// directory host, as it should appear at dst.
func deviceNodes(host, dst string) ([]specs.LinuxDevice, error) {
	fi, err := os.Stat(host)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		d, err := deviceNode(host, dst)
		if err != nil {
			return nil, err
		}
		if d == nil {
			return nil, fmt.Errorf("not a device node")
		}
		return []specs.LinuxDevice{*d}, nil
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(host, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(host, p)
		d, err := deviceNode(p, filepath.Join(dst, rel))
		if d != nil {
			out = append(out, *d)
		}
		return err
	})
	return out, err
}

// deviceNode describes the node at p, or returns nil if p is none.
func deviceNode(p, dst string) (*specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return nil, nil
	}
	mode := fs.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return &specs.LinuxDevice{
		Path: dst, Type: typ, Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}

// hostDevices lists the host's device nodes for --privileged, less those
// the runtime makes itself and the pseudo-terminal and shm directories, as
// runc's HostDevices.
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	skip := map[string]bool{"pts": true, "shm": true, "mqueue": true, "fd": true, ".lxc": true, ".udev": true,
		"console": true, "ptmx": true, "null": true, "zero": true, "full": true, "random": true, "urandom": true, "tty": true}
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // a node that vanished: skip it
		}
		if p != dir && skip[e.Name()] && filepath.Dir(p) == dir {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() || e.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		d, _ := deviceNode(p, p)
		if d != nil {
			out = append(out, *d)
		}
		return nil
	})
	return out, err
}
