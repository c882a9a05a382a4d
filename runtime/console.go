package runtime

import (
	"fmt"
	"os"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupConsole allocates a pty in the container's devpts, sends its
// master over the console socket and makes the slave this process's
// controlling terminal and stdio (and, on create, /dev/console).
func setupConsole(socketFD int, devConsole bool, size *specs.Box) error {
	if socketFD <= 0 {
		return invalid("a terminal was asked for but no console socket was given")
	}
	defer unix.Close(socketFD)
	master, slavePath, err := console.NewPty()
	if err != nil {
		return fmt.Errorf("allocate pty: %w", err)
	}
	defer master.Close()
	if size != nil {
		master.Resize(console.WinSize{Height: uint16(size.Height), Width: uint16(size.Width)})
	}
	slave, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open pty slave %s: %w", slavePath, err)
	}
	defer unix.Close(slave)
	if devConsole {
		if err := mountpoint("/dev/console", false); err != nil {
			return err
		}
		if err := unix.Mount(slavePath, "/dev/console", "", unix.MS_BIND, ""); err != nil {
			return mountErr("bind", slavePath, "/dev/console", err)
		}
	}
	name := []byte(master.Name())
	if err := unix.Sendmsg(socketFD, name, unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
		return fmt.Errorf("send pty master to console socket: %w", err)
	}
	if _, err := unix.Setsid(); err != nil {
		return &os.SyscallError{Syscall: "setsid", Err: err}
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return &os.SyscallError{Syscall: "dup3", Err: err}
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return &os.SyscallError{Syscall: "ioctl(TIOCSCTTY)", Err: err}
	}
	return nil
}
