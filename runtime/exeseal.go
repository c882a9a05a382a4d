package runtime

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// sealedExe returns a sealed, in-memory copy of the running binary. The
// container's init is executed from it, so a process in the container that
// opens /proc/<pid>/exe finds a read-only memfd and not berth on the host
// (CVE-2019-5736).
func sealedExe() (*os.File, error) {
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
