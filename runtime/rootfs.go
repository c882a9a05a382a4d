package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/runtime/cgroup"
	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// device is a device node every container gets.
type device struct {
	Path         string
	Major, Minor int64
}

// defaultDevices are the nodes of the spec's "Default Devices".
var defaultDevices = []device{
	{"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
	{"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
}

func mountErr(op, src, dst string, err error) error {
	return fmt.Errorf("%s %s on %s: %w", op, src, dst, err)
}

// prepareRootfs mounts everything the spec asks for inside the rootfs,
// still in the host's view of the filesystem.
func prepareRootfs(cfg *initConfig) error {
	s, rootfs := cfg.Spec, cfg.Rootfs
	// Without a mount namespace of its own (runc allows it) the container
	// changes nothing about the host's mounts but adds the spec's.
	if hasNS(s, specs.MountNamespace) {
		prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
		if p, ok := propagationFlags[s.Linux.RootfsPropagation]; ok {
			prop = p
		}
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return mountErr("set propagation of", "", "/", err)
		}
		// pivot_root refuses a shared parent mount; make it private, but
		// only if shared: a slave one keeps receiving the host's mounts.
		if mp, err := mountPointOf(filepath.Dir(rootfs)); err == nil && sharedMount(mp) {
			unix.Mount("", mp, "", unix.MS_PRIVATE, "")
		}
		if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return mountErr("bind", rootfs, rootfs, err)
		}
	}
	userns := hasNS(s, specs.UserNamespace)
	devBound := false
	for _, m := range s.Mounts {
		if err := mountEntry(cfg, m, userns); err != nil {
			return err
		}
		if filepath.Clean(m.Destination) == "/dev" && isBind(m) {
			devBound = true
		}
	}
	if !devBound {
		if err := createDevices(rootfs, s.Linux.Devices, userns); err != nil {
			return err
		}
		if err := devLinks(rootfs); err != nil {
			return err
		}
	}
	return nil
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// mountEntry performs one entry of the spec's mounts.
func mountEntry(cfg *initConfig, m specs.Mount, userns bool) error {
	dest, err := securejoin.SecureJoin(cfg.Rootfs, m.Destination)
	if err != nil {
		return fmt.Errorf("mount destination %s: %w", m.Destination, err)
	}
	mo := parseMountOptions(m.Options)
	switch {
	case isBind(m):
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(cfg.State.Bundle, src)
		}
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("mount source %s: %w", m.Source, err)
		}
		if err := mountpoint(dest, fi.IsDir()); err != nil {
			return err
		}
		if err := unix.Mount(src, dest, "", unix.MS_BIND|(mo.flags&unix.MS_REC), ""); err != nil {
			return mountErr("bind", src, m.Destination, err)
		}
		if rest := mo.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
			if err := remount(dest, rest); err != nil {
				return mountErr("remount", src, m.Destination, err)
			}
		}
	case m.Type == "cgroup" || m.Type == "cgroup2":
		if err := mountCgroup(cfg, dest, mo); err != nil {
			return err
		}
	default:
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return fmt.Errorf("mount destination %s: %w", m.Destination, err)
		}
		err := unix.Mount(m.Source, dest, m.Type, mo.flags, mo.data)
		if err != nil && m.Type == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
			// Without its own network namespace a container may
			// not mount sysfs: show it the host's, read-only.
			err = unix.Mount("/sys", dest, "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil {
				err = remount(dest, mo.flags|unix.MS_RDONLY)
			}
		}
		if err != nil {
			return mountErr("mount "+m.Type, m.Source, m.Destination, err)
		}
	}
	for _, p := range mo.propagation {
		if err := unix.Mount("", dest, "", p, ""); err != nil {
			return mountErr("set propagation of", "", m.Destination, err)
		}
	}
	if mo.recursiveRO {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(-1, dest, unix.AT_RECURSIVE, attr); err != nil {
			return mountErr("make read-only recursively", "", m.Destination, err)
		}
	}
	return nil
}

// remount applies flags to the bind mount at dest. The kernel refuses to
// clear flags locked by a less privileged mount namespace, so on EPERM
// the flags the mount already has are kept.
func remount(dest string, flags uintptr) error {
	err := unix.Mount("", dest, "", flags|unix.MS_BIND|unix.MS_REMOUNT, "")
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Statfs_t
	if serr := unix.Statfs(dest, &st); serr != nil {
		return err
	}
	locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY |
		unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	return unix.Mount("", dest, "", flags|locked|unix.MS_BIND|unix.MS_REMOUNT, "")
}

// mountpoint creates what a bind mount needs at dest: a directory, or an
// empty file for a file source.
func mountpoint(dest string, dir bool) error {
	if dir {
		return os.MkdirAll(dest, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		if errors.Is(err, unix.EISDIR) {
			return nil
		}
		return fmt.Errorf("create mount point %s: %w", dest, err)
	}
	return f.Close()
}

// mountCgroup gives the container its cgroup: cgroup2 itself inside a
// cgroup namespace on v2, else a bind of the container's own cgroup
// directories (per hierarchy, under a tmpfs on v1).
func mountCgroup(cfg *initConfig, dest string, mo mountOptions) error {
	flags := mo.flags &^ unix.MS_RDONLY
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	if cgroup.Unified() {
		if cfg.Cgroupns {
			if err := unix.Mount("cgroup2", dest, "cgroup2", mo.flags, ""); err != nil {
				return mountErr("mount cgroup2", "cgroup2", dest, err)
			}
			return nil
		}
		src := filepath.Join("/sys/fs/cgroup", cfg.CgroupPath)
		if err := unix.Mount(src, dest, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return mountErr("bind", src, dest, err)
		}
		return remount(dest, mo.flags)
	}
	if err := unix.Mount("tmpfs", dest, "tmpfs", flags, "mode=755"); err != nil {
		return mountErr("mount tmpfs", "tmpfs", dest, err)
	}
	hier, err := cgroupMounts()
	if err != nil {
		return err
	}
	var subs []string
	for _, h := range hier {
		name := filepath.Base(h)
		src := filepath.Join(h, cfg.CgroupPath)
		if _, err := os.Stat(src); err != nil {
			continue // a hierarchy the cgroup manager does not use
		}
		sub := filepath.Join(dest, name)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(src, sub, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return mountErr("bind", src, sub, err)
		}
		subs = append(subs, sub)
		if strings.Contains(name, ",") { // co-mounted: cpu,cpuacct → cpu, cpuacct
			for _, alias := range strings.Split(name, ",") {
				os.Symlink(name, filepath.Join(dest, alias))
			}
		}
	}
	// One recursive mount_setattr gives the tmpfs and every bind under it
	// the mount's flags; remounting each is the fallback (Linux < 5.12).
	if attr := mountAttr(mo.flags); attr != nil {
		if err := unix.MountSetattr(-1, dest, unix.AT_RECURSIVE, attr); err == nil {
			return nil
		}
	}
	for _, sub := range subs {
		if err := remount(sub, mo.flags); err != nil {
			return mountErr("remount", "", sub, err)
		}
	}
	if mo.flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", dest, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, "mode=755"); err != nil {
			return mountErr("remount read-only", "tmpfs", dest, err)
		}
	}
	return nil
}

// mountAttr translates mount flags into mount_setattr attributes.
func mountAttr(flags uintptr) *unix.MountAttr {
	a := &unix.MountAttr{}
	for _, f := range []struct {
		flag uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	} {
		if flags&f.flag != 0 {
			a.Attr_set |= f.attr
		}
	}
	for _, f := range []struct {
		flag uintptr
		attr uint64
	}{
		{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME}, {unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
		{unix.MS_RELATIME, unix.MOUNT_ATTR_RELATIME},
	} {
		if flags&f.flag != 0 {
			a.Attr_set |= f.attr
			a.Attr_clr |= unix.MOUNT_ATTR__ATIME
		}
	}
	return a
}

// cgroupMounts lists the host's cgroup hierarchies under /sys/fs/cgroup.
func cgroupMounts() ([]string, error) {
	var out []string
	err := eachMount(func(mountPoint, fsType string) {
		if (fsType == "cgroup" || fsType == "cgroup2") && filepath.Dir(mountPoint) == "/sys/fs/cgroup" {
			out = append(out, mountPoint)
		}
	})
	return out, err
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // mountinfo shows resolved paths
	}
	if filepath.Clean(dir) == "/" {
		return nil // never the host's own tree (validate refuses such a rootfs)
	}
	var mps []string
	prefix := strings.TrimSuffix(dir, "/") + "/"
	if err := eachMount(func(mp, _ string) {
		if mp == dir || strings.HasPrefix(mp, prefix) {
			mps = append(mps, mp)
		}
	}); err != nil {
		return err
	}
	var errs []error
	for i := len(mps) - 1; i >= 0; i-- {
		if err := unix.Unmount(mps[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, &os.PathError{Op: "unmount", Path: mps[i], Err: err})
		}
	}
	return errors.Join(errs...)
}

// mountPointOf returns the mount point holding path.
func mountPointOf(path string) (string, error) {
	best := ""
	err := eachMount(func(mp, _ string) {
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	})
	if best == "" && err == nil {
		err = fs.ErrNotExist
	}
	return best, err
}

// sharedMount reports whether the topmost mount at mountPoint is shared.
func sharedMount(mountPoint string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true
	}
	shared := false
	for _, l := range strings.Split(string(data), "\n") {
		// id parent major:minor root mountpoint options [optional...] - ...
		pre, _, _ := strings.Cut(l, " - ")
		f := strings.Fields(pre)
		if len(f) < 6 || unescapeMount(f[4]) != mountPoint {
			continue
		}
		shared = false
		for _, o := range f[6:] {
			if strings.HasPrefix(o, "shared:") {
				shared = true
			}
		}
	}
	return shared
}

func eachMount(fn func(mountPoint, fsType string)) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 {
			continue
		}
		fn(unescapeMount(fields[4]), strings.Fields(post)[0])
	}
	return sc.Err()
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// createDevices makes the default devices and linux.devices: mknod, or a
// bind of the host's node inside a user namespace where mknod is denied.
func createDevices(rootfs string, extra []specs.LinuxDevice, userns bool) error {
	oldMask := unix.Umask(0)
	defer unix.Umask(oldMask)
	all := make([]specs.LinuxDevice, 0, len(defaultDevices)+len(extra))
	mode := os.FileMode(0o666)
	for _, d := range defaultDevices {
		all = append(all, specs.LinuxDevice{Path: d.Path, Type: "c", Major: d.Major, Minor: d.Minor, FileMode: &mode})
	}
	all = append(all, extra...)
	for _, d := range all {
		dest, err := inRoot(rootfs, d.Path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		if userns {
			if err := mountpoint(dest, false); err != nil {
				return err
			}
			if err := unix.Mount(d.Path, dest, "", unix.MS_BIND, ""); err != nil {
				return mountErr("bind device", d.Path, d.Path, err)
			}
			continue
		}
		perm := uint32(0o666)
		if d.FileMode != nil {
			perm = uint32(d.FileMode.Perm())
		}
		var kind uint32
		switch d.Type {
		case "c", "u":
			kind = unix.S_IFCHR
		case "b":
			kind = unix.S_IFBLK
		case "p":
			kind = unix.S_IFIFO
		}
		os.Remove(dest)
		if err := unix.Mknod(dest, kind|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
			return fmt.Errorf("mknod %s: %w", d.Path, err)
		}
		uid, gid := 0, 0
		if d.UID != nil {
			uid = int(*d.UID)
		}
		if d.GID != nil {
			gid = int(*d.GID)
		}
		if err := unix.Chown(dest, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", d.Path, err)
		}
	}
	return nil
}

// inRoot resolves path's directory inside rootfs, symlinks and all, but
// not its last element: a device node or link is made (or replaced) there
// whatever a previous one pointed to.
func inRoot(rootfs, path string) (string, error) {
	dir, err := securejoin.SecureJoin(rootfs, filepath.Dir(path))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(path)), nil
}

// devLinks makes the /dev symlinks of the spec's "Default Devices".
func devLinks(rootfs string) error {
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		dest, err := inRoot(rootfs, l[1])
		if err != nil {
			return err
		}
		if l[1] == "/dev/ptmx" {
			os.Remove(dest)
		}
		if err := os.Symlink(l[0], dest); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

// switchRoot makes rootfs the root: pivot_root(".", ".") then a lazy
// unmount of the old root stacked beneath (runc's trick, needing no
// directory for the old root), or MS_MOVE + chroot with noPivot.
func switchRoot(rootfs string, noPivot, mountNS bool) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir %s: %w", rootfs, err)
	}
	if !mountNS {
		// The host's mount namespace: neither pivot nor move, a chroot.
		if err := unix.Chroot("."); err != nil {
			return &os.PathError{Op: "chroot", Path: rootfs, Err: err}
		}
		return unix.Chdir("/")
	}
	if noPivot {
		if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return mountErr("move", rootfs, "/", err)
		}
		if err := unix.Chroot("."); err != nil {
			return &os.PathError{Op: "chroot", Path: rootfs, Err: err}
		}
		return unix.Chdir("/")
	}
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/", Err: err}
	}
	defer unix.Close(oldRoot)
	if err := unix.PivotRoot(".", "."); err != nil {
		return &os.PathError{Op: "pivot_root", Path: rootfs, Err: err}
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return err
	}
	// Keep the unmount from propagating to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return mountErr("make old root slave", "", "/", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &os.PathError{Op: "unmount old root", Path: "/", Err: err}
	}
	return unix.Chdir("/")
}

// finalizeRootfs runs after the root switch: rootfs propagation and
// read-only flag, then masked and read-only paths.
func finalizeRootfs(s *specs.Spec) error {
	if p, ok := propagationFlags[s.Linux.RootfsPropagation]; ok {
		if err := unix.Mount("", "/", "", p, ""); err != nil {
			return mountErr("set propagation of", "", "/", err)
		}
	}
	if s.Root.Readonly {
		if err := remount("/", unix.MS_RDONLY); err != nil {
			return mountErr("remount read-only", "", "/", err)
		}
	}
	for _, p := range s.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	for _, p := range s.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return mountErr("bind", p, p, err)
	}
	if err := remount(p, unix.MS_RDONLY|unix.MS_REC); err != nil {
		return mountErr("remount read-only", p, p, err)
	}
	return nil
}

func maskPath(p string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil {
		return mountErr("mask", "", p, err)
	}
	return nil
}
