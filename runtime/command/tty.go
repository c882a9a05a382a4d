package command

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// ttyProxy is the console socket `run` and `exec` make for themselves
// when the process wants a terminal and no --console-socket was given:
// it receives the pty master and copies between it and our stdio.
type ttyProxy struct {
	local, remote *os.File
	master        console.Console
	current       console.Console
	out           sync.WaitGroup
}

func newTTYProxy() (*ttyProxy, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socketpair: %w", err)
	}
	return &ttyProxy{local: os.NewFile(uintptr(fds[0]), "console-local"), remote: os.NewFile(uintptr(fds[1]), "console-remote")}, nil
}

// attach receives the master and starts copying.
func (t *ttyProxy) attach() error {
	t.remote.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(t.local.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("receive pty master: no fd")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fmt.Errorf("receive pty master: no fd")
	}
	t.master, err = console.ConsoleFromFile(os.NewFile(uintptr(fds[0]), "pty-master"))
	if err != nil {
		return err
	}
	if c, err := console.ConsoleFromFile(os.Stdin); err == nil {
		t.current = c
		c.SetRaw()
		t.resize()
	}
	go io.Copy(t.master, os.Stdin)
	t.out.Add(1)
	go func() {
		defer t.out.Done()
		io.Copy(os.Stdout, t.master)
	}()
	return nil
}

func (t *ttyProxy) resize() {
	if t.current != nil && t.master != nil {
		t.master.ResizeFrom(t.current)
	}
}

// drain waits for the output the process left in the pty.
func (t *ttyProxy) drain() {
	if t.master == nil {
		return
	}
	done := make(chan struct{})
	go func() { t.out.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second): // a process of the container still holds the pty
	}
}

func (t *ttyProxy) close() {
	if t.current != nil {
		t.current.Reset()
	}
	if t.master != nil {
		t.master.Close()
	}
	t.local.Close()
	t.remote.Close()
}
