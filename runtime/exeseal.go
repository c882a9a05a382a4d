package runtime

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// sealedExe returns the running binary opened so that nobody can write to
// it through the returned file: the container's init is executed from it,
// and a process in the container that reopens /proc/<pid>/exe must not
// reach berth on the host (CVE-2019-5736).
//
// The fast way, as runc 1.2 does, opens the binary through a private,
// detached overlayfs mount that has lower layers only: overlayfs without
// an upper layer has nothing a write could go to, whatever mount flags a
// privileged process might change, and making it costs a few syscalls
// whatever the binary's size. Where that is not possible (no overlayfs,
// no new mount API) a sealed memfd copy is made instead.
//
// Tearing the detached mounts down costs more than making them (about
// 0.7ms, an RCU grace period); the caller closes the file once init has
// started, off the critical path.
func sealedExe() (*os.File, error) {
	if f, err := overlayExe(); err == nil {
		return f, nil
	}
	return memfdExe()
}

func overlayExe() (*os.File, error) {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	// Overlayfs without an upper layer wants two lower ones: the binary's
	// directory over an empty, detached tmpfs.
	empty, err := detachedMount("tmpfs", "", unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return nil, err
	}
	lower := filepath.Dir(self) + ":/proc/self/fd/" + strconv.Itoa(empty)
	mnt, err := detachedMount("overlay", lower, unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	// The overlay holds the tmpfs now; the open file will hold the overlay.
	// Their fds are closed in the background: see sealedExe.
	go unix.Close(empty)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(mnt, filepath.Base(self), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	go unix.Close(mnt)
	if err != nil {
		return nil, err
	}
	// The overlay must show the very file we run, not one put there since.
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil || unix.Stat("/proc/self/exe", &b) != nil || a.Size != b.Size || a.Mtim != b.Mtim {
		unix.Close(fd)
		return nil, fmt.Errorf("binary changed under the overlay")
	}
	return os.NewFile(uintptr(fd), "berth-init"), nil
}

// detachedMount makes a mount of fstype, attached nowhere, and returns
// its fd; lowerdir is set when not empty.
func detachedMount(fstype, lowerdir string, attrs int) (int, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fsfd)
	if lowerdir != "" {
		if err := unix.FsconfigSetString(fsfd, "lowerdir", lowerdir); err != nil {
			return -1, err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, err
	}
	return unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
}

func memfdExe() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open own binary: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("berth-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err != nil {
		// Kernels before 6.3 know no MFD_EXEC.
		fd, err = unix.MemfdCreate("berth-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "berth-init")
	size := fi.Size()
	for size > 0 {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(size))
		if err != nil || n == 0 {
			break
		}
		size -= int64(n)
	}
	if size > 0 {
		if _, err := io.Copy(mem, src); err != nil {
			mem.Close()
			return nil, fmt.Errorf("copy own binary: %w", err)
		}
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal own binary: %w", err)
	}
	return mem, nil
}
