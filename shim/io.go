package shim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// stdio is the shim's side of one run's standard streams.
type stdio struct {
	stdin   *os.File   // the container's stdin (pipe write end or pty master); nil without OpenStdin
	console *os.File   // the pty master, with a tty
	outputs []*os.File // stdout and stderr pipes, or the pty master
	child   [3]*os.File
	sock    *os.File // our end of the console socket
	sockTo  *os.File // the runtime's end
}

// newStdio makes the pipes (or the console socket) of a run.
func newStdio(cfg *Config) (sio *stdio, err error) {
	sio = &stdio{}
	defer func() {
		if err != nil {
			sio.closeChild()
			sio.close()
		}
	}()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	sio.child[0] = null
	if cfg.Tty {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("console socket: %w", err)
		}
		sio.sock, sio.sockTo = os.NewFile(uintptr(fds[0]), "console-socket"), os.NewFile(uintptr(fds[1]), "console-socket")
		// The process's stdio is the pty's slave; the runtime's own
		// messages before exec go nowhere.
		if sio.child[1], err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
			return nil, err
		}
		if sio.child[2], err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
			return nil, err
		}
		return sio, nil
	}
	if cfg.OpenStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("stdin pipe: %w", err)
		}
		sio.child[0].Close()
		sio.child[0], sio.stdin = r, w
	}
	for i := 1; i <= 2; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("output pipe: %w", err)
		}
		sio.child[i] = w
		sio.outputs = append(sio.outputs, r)
	}
	return sio, nil
}

// closeChild closes the runtime's ends once the container has them.
func (sio *stdio) closeChild() {
	for i, f := range sio.child {
		if f != nil {
			f.Close()
			sio.child[i] = nil
		}
	}
	if sio.sockTo != nil {
		sio.sockTo.Close()
		sio.sockTo = nil
	}
}

// close closes the shim's ends of the run's streams except the outputs,
// which their copiers close.
func (sio *stdio) close() {
	if sio.sock != nil {
		sio.sock.Close()
	}
	if sio.stdin != nil && sio.stdin != sio.console {
		sio.stdin.Close()
	}
	if sio.console == nil {
		for _, f := range sio.outputs {
			f.Close()
		}
	}
}

// receiveConsole takes the pty master the runtime sends over the console
// socket (SCM_RIGHTS), waiting at most timeout.
func (sio *stdio) receiveConsole(cfg *Config, timeout time.Duration) error {
	fd := int(sio.sock.Fd())
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("console socket: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("no pty master from the runtime within %v: %w", timeout, errdefs.ErrUnavailable)
		}
		break
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	var master int = -1
	for _, m := range msgs {
		rights, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, f := range rights {
			if master < 0 {
				master = f
			} else {
				unix.Close(f)
			}
		}
	}
	if master < 0 {
		return fmt.Errorf("console socket carried no pty master: %w", errdefs.ErrUnavailable)
	}
	// Non-blocking, so the File is pollable: reads take deadlines and a
	// Close unblocks them.
	if err := unix.SetNonblock(master, true); err != nil {
		unix.Close(master)
		return fmt.Errorf("pty master: %w", err)
	}
	sio.console = os.NewFile(uintptr(master), "pty-master")
	sio.outputs = []*os.File{sio.console}
	if cfg.OpenStdin {
		sio.stdin = sio.console
	}
	return nil
}

// attachClient is one attached client as the output copiers see it.
type attachClient struct {
	ch   chan []byte // frames; closed when the client leaves the set
	exit *Exit       // set before ch closes when the process exited; nil if dropped
}

// attachQueue bounds the frames queued for one client: a client that
// falls this far behind is dropped rather than stalling the container.
const attachQueue = 256

// clients is the set of attached clients.
type clients struct {
	mu  sync.Mutex
	set map[*attachClient]struct{}
}

func (cs *clients) add(c *attachClient) {
	cs.mu.Lock()
	if cs.set == nil {
		cs.set = map[*attachClient]struct{}{}
	}
	cs.set[c] = struct{}{}
	cs.mu.Unlock()
}

// drop removes c, which then ends with an error frame.
func (cs *clients) drop(c *attachClient) {
	cs.mu.Lock()
	if _, ok := cs.set[c]; ok {
		delete(cs.set, c)
		close(c.ch)
	}
	cs.mu.Unlock()
}

// broadcast queues a frame of p for every client.
func (cs *clients) broadcast(typ byte, p []byte) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.set) == 0 {
		return
	}
	frame := appendFrame(make([]byte, 0, 5+len(p)), typ, p)
	for c := range cs.set {
		select {
		case c.ch <- frame:
		default:
			delete(cs.set, c)
			close(c.ch)
		}
	}
}

// exited ends every client with e.
func (cs *clients) exited(e Exit) {
	cs.mu.Lock()
	for c := range cs.set {
		c.exit = &e
		close(c.ch)
	}
	cs.set = nil
	cs.mu.Unlock()
}

// copyOutput copies one output stream of the container to the attached
// clients and the log until it ends, then closes f.
func (s *shim) copyOutput(f *os.File, stream string, typ byte) {
	defer f.Close()
	buf := make([]byte, 8192)
	var pending []byte // the log's unfinished line
	for {
		n, err := f.Read(buf)
		if n > 0 {
			s.clients.broadcast(typ, buf[:n])
			if s.logw != nil {
				pending = s.logLines(stream, append(pending, buf[:n]...), time.Now().UTC())
			}
		}
		if err != nil {
			// EOF on a pipe; EIO on a pty master once the slave is gone.
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, unix.EIO) && !errors.Is(err, io.EOF) {
				s.log.Warn("read container output", "stream", stream, "err", err)
			}
			break
		}
	}
	if len(pending) > 0 {
		s.writeLog(stream, pending, time.Now().UTC())
	}
}

// logChunk is the size at which Docker cuts a line without a newline
// into partial records.
const logChunk = 16 * 1024

// logLines logs the whole lines of p, and 16 KiB chunks of a longer
// unfinished line, and returns the rest (which it may have moved to the
// start of p).
func (s *shim) logLines(stream string, p []byte, t time.Time) []byte {
	n := bytes.LastIndexByte(p, '\n') + 1
	if rest := len(p) - n; rest >= logChunk {
		n += rest - rest%logChunk
	}
	if n == 0 {
		return p
	}
	s.writeLog(stream, p[:n], t)
	rest := copy(p, p[n:])
	p = p[:rest]
	if cap(p) > 4*logChunk && rest < logChunk { // keep the shim small after a burst
		p = append([]byte(nil), p...)
	}
	return p
}

func (s *shim) writeLog(stream string, p []byte, t time.Time) {
	if err := s.logw.Write(stream, p, t); err != nil {
		s.log.Warn("write log", "err", err)
	}
}
