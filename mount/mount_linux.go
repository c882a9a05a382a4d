package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// flagOptions maps the mount(8) options that are mount flags. The bool says
// whether the option clears (true) rather than sets the flag.
var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	// Propagation: applied by a separate mount(2) call after the mount.
	"private":     {false, unix.MS_PRIVATE},
	"rprivate":    {false, unix.MS_PRIVATE | unix.MS_REC},
	"shared":      {false, unix.MS_SHARED},
	"rshared":     {false, unix.MS_SHARED | unix.MS_REC},
	"slave":       {false, unix.MS_SLAVE},
	"rslave":      {false, unix.MS_SLAVE | unix.MS_REC},
	"unbindable":  {false, unix.MS_UNBINDABLE},
	"runbindable": {false, unix.MS_UNBINDABLE | unix.MS_REC},
}

const propagationFlags = unix.MS_SHARED | unix.MS_PRIVATE | unix.MS_SLAVE | unix.MS_UNBINDABLE

// parseOptions splits options into mount flags and the filesystem's data.
func parseOptions(options []string) (flags uintptr, data []string) {
	for _, o := range options {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, o)
	}
	return flags, data
}

// Mount mounts m on target, which must exist.
//
// The order follows containerd: one mount(2) with every flag except the
// propagation ones, then a second call for propagation (the kernel takes
// propagation changes only on their own), then, for a read-only bind, a
// remount, because MS_BIND ignores MS_RDONLY on the first call.
//
// An overlay whose data would not fit in the single page mount(2) accepts
// (many long lowerdir paths) is mounted from the lowerdirs' common parent
// with relative paths; see mountAt.
func (m Mount) Mount(target string) error {
	flags, dataOpts := parseOptions(m.Options)
	chdir := ""
	if m.Type == "overlay" {
		chdir, dataOpts = compactLowerdir(dataOpts)
	}
	data := strings.Join(dataOpts, ",")
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("mount %s: options are %d bytes, more than a page: %w", target, len(data), errdefs.ErrInvalidArgument)
	}
	oflags := flags &^ propagationFlags
	if flags&unix.MS_REMOUNT == 0 || data != "" {
		if err := mountAt(chdir, m.Source, target, m.Type, oflags, data); err != nil {
			return err
		}
	}
	if flags&propagationFlags != 0 {
		pflags := flags & (propagationFlags | unix.MS_REC | unix.MS_SILENT)
		if err := unix.Mount("", target, "", pflags, ""); err != nil {
			return &os.PathError{Op: "mount (propagation)", Path: target, Err: err}
		}
	}
	const bindRO = unix.MS_BIND | unix.MS_RDONLY
	if oflags&bindRO == bindRO {
		if err := unix.Mount("", target, "", oflags|unix.MS_REMOUNT, ""); err != nil {
			return &os.PathError{Op: "mount (remount ro)", Path: target, Err: err}
		}
	}
	return nil
}

// compactLowerdir rewrites an overlay's lowerdir option relative to the
// lowerdirs' longest common parent directory when the data would otherwise
// come close to a page. It returns that directory ("" when no rewrite was
// needed or possible) and the options to use from it.
func compactLowerdir(opts []string) (string, []string) {
	if len(strings.Join(opts, ",")) < os.Getpagesize()-512 {
		return "", opts
	}
	idx := -1
	for i, o := range opts {
		if strings.HasPrefix(o, "lowerdir=") {
			idx = i
		}
	}
	if idx < 0 {
		return "", opts
	}
	lowers := strings.Split(strings.TrimPrefix(opts[idx], "lowerdir="), ":")
	common := filepath.Dir(filepath.Clean(lowers[0]))
	for _, l := range lowers[1:] {
		for common != "/" && !strings.HasPrefix(filepath.Clean(l), common+"/") {
			common = filepath.Dir(common)
		}
	}
	if common == "/" || !filepath.IsAbs(common) {
		return "", opts
	}
	rel := make([]string, len(lowers))
	for i, l := range lowers {
		rel[i] = strings.TrimPrefix(filepath.Clean(l), common+"/")
	}
	out := append([]string(nil), opts...)
	out[idx] = "lowerdir=" + strings.Join(rel, ":")
	// upperdir and workdir stay absolute: they resolve the same from any cwd.
	return common, out
}

// mountAt calls mount(2), from directory chdir when it is not empty.
//
// The working directory is a property of the whole process, so changing it
// would race with every other goroutine. Instead the call runs on a goroutine
// locked to its own OS thread that first unshares its filesystem attributes
// (CLONE_FS): the chdir then affects that thread alone. The thread is never
// unlocked, so the Go runtime discards it when the goroutine returns rather
// than handing a thread with a foreign cwd to other goroutines. containerd
// forks a helper child for the same purpose; a thread is cheaper.
func mountAt(chdir, source, target, fstype string, flags uintptr, data string) error {
	if chdir == "" {
		if err := unix.Mount(source, target, fstype, flags, data); err != nil {
			return &os.PathError{Op: "mount " + fstype, Path: target, Err: err}
		}
		return nil
	}
	target, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("mount %s: %w", target, err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- os.NewSyscallError("unshare CLONE_FS", err)
			return
		}
		if err := unix.Chdir(chdir); err != nil {
			errc <- &os.PathError{Op: "chdir", Path: chdir, Err: err}
			return
		}
		if err := unix.Mount(source, target, fstype, flags, data); err != nil {
			errc <- &os.PathError{Op: "mount " + fstype + " (from " + chdir + ")", Path: target, Err: err}
			return
		}
		errc <- nil
	}()
	return <-errc
}

// All mounts mounts on target in order. If one fails, the ones already
// mounted by this call are unmounted again before the error is returned.
func All(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := m.Mount(target); err != nil {
			for j := 0; j < i; j++ {
				err = errors.Join(err, Unmount(target, unix.MNT_DETACH))
			}
			return err
		}
	}
	return nil
}

// Unmount unmounts the top mount on target with umount2(2) flags, retrying
// for a moment while the kernel reports the mount busy. A target that is not
// a mount point gives an error wrapping unix.EINVAL.
func Unmount(target string, flags int) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Unmount(target, flags); err != unix.EBUSY {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return &os.PathError{Op: "umount", Path: target, Err: err}
	}
	return nil
}

// UnmountAll unmounts every mount stacked on target until none is left. A
// target that does not exist or is not a mount point is not an error.
func UnmountAll(target string, flags int) error {
	for {
		err := Unmount(target, flags)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return err
		}
	}
}

// WithTempMount mounts mounts on a new temporary directory, calls fn with
// its path, then always unmounts everything and removes the directory. The
// directory is removed with rmdir, never recursively, so a mount that failed
// to come off cannot take its contents with it.
func WithTempMount(ctx context.Context, mounts []Mount, fn func(root string) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "berth-mount-")
	if err != nil {
		return fmt.Errorf("temp mount: %w", err)
	}
	defer func() {
		if uerr := UnmountAll(root, 0); uerr != nil {
			err = errors.Join(err, fmt.Errorf("temp mount: %w", uerr))
			return
		}
		if rerr := os.Remove(root); rerr != nil {
			err = errors.Join(err, fmt.Errorf("temp mount: %w", rerr))
		}
	}()
	if err := All(mounts, root); err != nil {
		return fmt.Errorf("temp mount: %w", err)
	}
	return fn(root)
}
