package shim

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// holdTerminalArg is the role of a process that holds the terminal of a
// detached exec (`berth shim --hold-terminal`, the master on fd 3).
const holdTerminalArg = "--hold-terminal"

// HoldTerminal keeps the terminal whose master is given open for as long
// as a detached process uses it (exec -d -t): a process started detached
// (a new session, stdio on /dev/null) reads and drops what the terminal
// prints until its last user closes it. Without it the master would close
// with the command that made it, and the kernel would hang up the
// process (SIGHUP) — Docker's daemon holds it instead.
func HoldTerminal(exe string, master *os.File) error {
	cmd := exec.Command(exe, "shim", holdTerminalArg)
	cmd.Args[0] = "berth"
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{master}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("hold the terminal: %w", err)
	}
	go cmd.Wait()
	return nil
}

// holdTerminalMain drains the master on fd 3 until the terminal's last
// user is gone (EIO).
func holdTerminalMain() int {
	tune()
	io.Copy(io.Discard, os.NewFile(3, "pty-master"))
	return 0
}
