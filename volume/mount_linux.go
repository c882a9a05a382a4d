package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/mount"
	"golang.org/x/sys/unix"
)

// NeedsMount reports whether a volume with these options is a filesystem
// mounted on its _data (the local driver's type/device options) rather
// than a plain directory.
func NeedsMount(opts map[string]string) bool {
	return opts["type"] != "" || opts["device"] != ""
}

// mountOf is the mount a volume's options describe: mount(8)'s
// -t type, -o o, device.
func mountOf(opts map[string]string) mount.Mount {
	m := mount.Mount{Type: opts["type"], Source: opts["device"]}
	for _, o := range strings.Split(opts["o"], ",") {
		if o != "" {
			m.Options = append(m.Options, o)
		}
	}
	return m
}

// Mount readies the volume for a container and returns the host path to
// bind into it. ref names the user (the container's ID): a volume with
// type/device options is mounted on its _data by the first ref and stays
// mounted until Unmount drops the last. Mounting again for a ref already
// holding the volume changes nothing, so a retried start is harmless. A
// plain volume needs no mount and keeps no count.
func (s *Store) Mount(ctx context.Context, name, ref string) (string, error) {
	v, err := s.Get(ctx, name)
	if err != nil {
		return "", err
	}
	if !NeedsMount(v.Options) {
		return v.Mountpoint, nil
	}
	if ref == "" {
		return "", fmt.Errorf("mount %s: empty reference: %w", name, errdefs.ErrInvalidArgument)
	}
	lk, err := s.lock(name)
	if err != nil {
		return "", err
	}
	defer lk.unlock()
	refs, err := s.readRefs(name)
	if err != nil {
		return "", wrapOp("mount", name, err)
	}
	mounted, err := isMountPoint(v.Mountpoint)
	if err != nil {
		return "", wrapOp("mount", name, err)
	}
	if !mounted {
		// Not mounted whatever refs says (a reboot, or holders that died
		// with their mount namespace): those holds went with the mount.
		refs = nil
		if err := mountOf(v.Options).Mount(v.Mountpoint); err != nil {
			return "", fmt.Errorf("mount %s: failed to mount local volume: %s", name, hidePassword(err.Error(), v.Options["o"]))
		}
	}
	if !slices.Contains(refs, ref) || !mounted {
		if !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
		if err := s.writeRefs(name, refs); err != nil {
			if !mounted {
				mount.Unmount(v.Mountpoint, unix.MNT_DETACH)
			}
			return "", wrapOp("mount", name, err)
		}
	}
	return v.Mountpoint, nil
}

// Unmount drops ref's hold on the volume; the last one out unmounts a
// volume with type/device options. Dropping a ref that holds nothing is
// not an error.
func (s *Store) Unmount(ctx context.Context, name, ref string) error {
	v, err := s.Get(ctx, name)
	if err != nil {
		return err
	}
	if !NeedsMount(v.Options) {
		return nil
	}
	lk, err := s.lock(name)
	if err != nil {
		return err
	}
	defer lk.unlock()
	refs, err := s.readRefs(name)
	if err != nil {
		return wrapOp("unmount", name, err)
	}
	if i := slices.Index(refs, ref); i >= 0 {
		refs = slices.Delete(refs, i, i+1)
		if err := s.writeRefs(name, refs); err != nil {
			return wrapOp("unmount", name, err)
		}
	}
	if len(refs) > 0 {
		return nil
	}
	if err := unmountData(v.Mountpoint); err != nil {
		return wrapOp("unmount", name, err)
	}
	return nil
}

// Refs returns who holds the volume's mount (see Mount), oldest first:
// none for a volume without type/device options or whose mount is gone.
func (s *Store) Refs(ctx context.Context, name string) ([]string, error) {
	v, err := s.Get(ctx, name)
	if err != nil || !NeedsMount(v.Options) {
		return nil, err
	}
	lk, err := s.lock(name)
	if err != nil {
		return nil, err
	}
	defer lk.unlock()
	refs, err := s.readRefs(name)
	if err != nil {
		return nil, err
	}
	if mounted, err := isMountPoint(v.Mountpoint); err != nil || !mounted {
		return nil, err
	}
	return refs, nil
}

// hidePassword masks a password= mount option (cifs) in a message.
func hidePassword(msg, o string) string {
	for _, opt := range strings.Split(o, ",") {
		if p, ok := strings.CutPrefix(opt, "password="); ok && p != "" {
			msg = strings.ReplaceAll(msg, "password="+p, "password=********")
		}
	}
	return msg
}

// unmountData takes every mount off path and checks that none is left.
func unmountData(path string) error {
	for range 64 {
		mounted, err := isMountPoint(path)
		if err != nil || !mounted {
			return err
		}
		if err := mount.Unmount(path, 0); err != nil {
			// Busy past mount.Unmount's retries: detach, so the mount goes
			// as soon as its last user does.
			if err := mount.Unmount(path, unix.MNT_DETACH); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("%s: still mounted: %w", path, errdefs.ErrFailedPrecondition)
}

// isMountPoint reports whether path is the root of a mount, by statx's
// STATX_ATTR_MOUNT_ROOT (Linux 5.8) or else /proc/self/mountinfo.
func isMountPoint(path string) (bool, error) {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &stx)
	if err != nil {
		return false, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMountinfo(f[4]) == path {
			return true, nil
		}
	}
	return false, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// volumeLock is a held flock on a volume's lock file.
type volumeLock struct{ f *os.File }

func (l volumeLock) unlock() { l.f.Close() } // closing drops the flock

// lock takes the volume's flock. A volume removed while we waited gives
// its "no such volume" error: its lock file was renamed away with it.
func (s *Store) lock(name string) (volumeLock, error) {
	p := filepath.Join(s.dir, name, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return volumeLock{}, noSuchVolume(name)
	}
	if err != nil {
		return volumeLock{}, fmt.Errorf("lock volume %s: %w", name, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return volumeLock{}, fmt.Errorf("lock volume %s: %w", name, &os.PathError{Op: "flock", Path: p, Err: err})
	}
	held, err1 := f.Stat()
	now, err2 := os.Lstat(p)
	if err1 != nil || err2 != nil || !os.SameFile(held, now) {
		f.Close()
		return volumeLock{}, noSuchVolume(name)
	}
	return volumeLock{f}, nil
}

// readRefs reads mounts.json; the caller holds the lock.
func (s *Store) readRefs(name string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, name, refsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var refs []string
	if err := json.Unmarshal(data, &refs); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", refsFile, err, errdefs.ErrFailedPrecondition)
	}
	return refs, nil
}

// writeRefs replaces mounts.json; the caller holds the lock.
func (s *Store) writeRefs(name string, refs []string) error {
	if refs == nil {
		refs = []string{}
	}
	data, err := json.Marshal(refs)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(s.dir, name, refsFile), data)
}
