package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/mount"
	"golang.org/x/sys/unix"
)

// Overlay is the overlayfs snapshotter: each snapshot's fs directory holds
// only its own changes, and an active snapshot mounts as an overlay of its
// parents' fs directories (lower) under its own (upper).
type Overlay struct {
	*store
	options []string // kernel options added to every overlay mount
}

var _ Snapshotter = (*Overlay)(nil)

// NewOverlay opens (or creates) an overlay snapshotter at root. It fails
// with errdefs.ErrNotImplemented where overlayfs cannot work on root: no
// overlay filesystem, or a backing filesystem without d_type. It is safe to
// use from many processes at once (see the package doc).
func NewOverlay(root string, opts ...Option) (*Overlay, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("overlay snapshotter: %w", err)
	}
	kopts, err := probeOverlay(root)
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter on %s: %w", root, err)
	}
	o := &Overlay{options: kopts}
	s, err := openStore(root, o, opts)
	if err != nil {
		return nil, err
	}
	o.store = s
	return o, nil
}

func (o *Overlay) fill(ctx context.Context, dir string, kind Kind, parents []string) error {
	return os.Mkdir(filepath.Join(dir, "work"), 0o711)
}

// mounts follows containerd: no parent → a bind of the snapshot itself; a
// view of one parent → a read-only bind of the parent; otherwise overlay.
func (o *Overlay) mounts(id uint64, kind Kind, parents []string) []mount.Mount {
	rw := "rw"
	if kind != KindActive {
		rw = "ro"
	}
	switch {
	case len(parents) == 0:
		return []mount.Mount{{Type: "bind", Source: o.fsDir(id), Options: []string{rw, "rbind"}}}
	case kind != KindActive && len(parents) == 1:
		return []mount.Mount{{Type: "bind", Source: parents[0], Options: []string{"ro", "rbind"}}}
	}
	opts := append([]string(nil), o.options...)
	if kind == KindActive {
		opts = append(opts, "upperdir="+o.fsDir(id), "workdir="+filepath.Join(o.dir(id), "work"))
	}
	opts = append(opts, "lowerdir="+strings.Join(parents, ":"))
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

// probeOverlay checks that overlayfs works on root and picks the options
// every mount needs: index=off where the kernel has the knob (hardlinks
// across layers otherwise tie upper to lower inodes, which breaks on
// reuse), and userxattr inside a user namespace, where trusted.* xattrs are
// unavailable.
//
// A successful probe is remembered in <root>/probe.json for this kernel, so
// that the many short-lived berth processes do not each mount a test
// overlay; a probe killed half-way (its probe-* directory, perhaps still
// mounted) is cleaned up by the next prober, under probe.lock.
func probeOverlay(root string) ([]string, error) {
	var uts unix.Utsname
	unix.Uname(&uts)
	kernel := unix.ByteSliceToString(uts.Release[:])
	cache := filepath.Join(root, "probe.json")
	var cached struct {
		Kernel  string   `json:"kernel"`
		Options []string `json:"options"`
	}
	fromCache := func() bool {
		data, err := os.ReadFile(cache)
		return err == nil && json.Unmarshal(data, &cached) == nil && cached.Kernel == kernel
	}
	if fromCache() {
		return cached.Options, nil
	}
	// One prober at a time: holding probe.lock, every probe-* directory
	// is a dead prober's and can go, mounted or not.
	lock, err := os.OpenFile(filepath.Join(root, "probe.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, &os.SyscallError{Syscall: "flock", Err: err}
	}
	if fromCache() {
		return cached.Options, nil // another process probed meanwhile
	}
	cleanProbes(root)
	opts, err := probeOverlayNow(root)
	if err != nil {
		return nil, err
	}
	cached.Kernel, cached.Options = kernel, opts
	if data, err := json.Marshal(cached); err == nil {
		tmp := cache + ".tmp-" + strconv.Itoa(os.Getpid())
		if os.WriteFile(tmp, data, 0o600) == nil {
			os.Rename(tmp, cache)
		}
	}
	return opts, nil
}

// cleanProbes removes the probe directories of probes that died,
// unmounting their test mount first. The caller holds probe.lock.
func cleanProbes(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, "probe-*"))
	for _, d := range dirs {
		if fi, err := os.Lstat(d); err != nil || !fi.IsDir() {
			continue
		}
		mount.UnmountAll(filepath.Join(d, "m"), unix.MNT_DETACH)
		os.RemoveAll(d)
	}
}

func probeOverlayNow(root string) ([]string, error) {
	fsys, err := os.ReadFile("/proc/filesystems")
	if err != nil || !bytes.Contains(fsys, []byte("\toverlay\n")) {
		return nil, fmt.Errorf("kernel has no overlay filesystem: %w", errdefs.ErrNotImplemented)
	}
	var opts []string
	if _, err := os.Stat("/sys/module/overlay/parameters/index"); err == nil {
		opts = append(opts, "index=off")
	}
	if uidMap, err := os.ReadFile("/proc/self/uid_map"); err == nil && !bytes.Contains(uidMap, []byte("4294967295")) {
		opts = append(opts, "userxattr")
	}
	dir, err := os.MkdirTemp(root, "probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if ok, err := hasDType(dir); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("backing filesystem has no d_type: %w", errdefs.ErrNotImplemented)
	}
	for _, d := range []string{"l1", "l2", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	m := mount.Mount{Type: "overlay", Source: "overlay", Options: append(append([]string(nil), opts...),
		"lowerdir="+filepath.Join(dir, "l1")+":"+filepath.Join(dir, "l2"),
		"upperdir="+filepath.Join(dir, "u"), "workdir="+filepath.Join(dir, "w"))}
	if err := m.Mount(filepath.Join(dir, "m")); err != nil {
		return nil, fmt.Errorf("test mount: %w: %w", errdefs.ErrNotImplemented, err)
	}
	if err := mount.UnmountAll(filepath.Join(dir, "m"), unix.MNT_DETACH); err != nil {
		return nil, err
	}
	return opts, nil
}

// hasDType reports whether the filesystem of dir fills in d_type, without
// which overlayfs cannot tell whiteouts from files.
func hasDType(dir string) (bool, error) {
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		return false, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return false, os.NewSyscallError("getdents64", err)
	}
	// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
	for b := buf[:n]; len(b) >= 19; {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen == 0 || reclen > len(b) {
			break
		}
		if name := b[19:reclen]; string(bytes.TrimRight(name, "\x00")) == "f" {
			return b[18] == unix.DT_REG, nil
		}
		b = b[reclen:]
	}
	return false, fmt.Errorf("probe file missing from its directory")
}
