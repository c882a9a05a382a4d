package runtime

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// message is one frame of the parent ↔ init protocol (see the package doc).
type message struct {
	Type string `json:"type"`
	Msg  string `json:"msg,omitempty"`
}

// conn is one end of the init socketpair, used with blocking raw syscalls
// so that it works the same before and after the Go runtime's netpoller
// could have seen it, and so that file descriptors can ride along.
type conn struct{ fd int }

func (c conn) close() { unix.Close(c.fd) }

// readFull reads exactly len(buf) bytes, collecting any passed fds.
func (c conn) readFull(buf []byte) (fds []int, err error) {
	oob := make([]byte, unix.CmsgSpace(4*4))
	for off := 0; off < len(buf); {
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf[off:], oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fds, fmt.Errorf("read init socket: %w", err)
		}
		if n == 0 {
			return fds, io.ErrUnexpectedEOF
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil {
				for _, m := range msgs {
					if got, err := unix.ParseUnixRights(&m); err == nil {
						fds = append(fds, got...)
					}
				}
			}
		}
		off += n
	}
	return fds, nil
}

func (c conn) writeAll(buf []byte, fds ...int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for off := 0; off < len(buf); {
		n, err := unix.SendmsgN(c.fd, buf[off:], oob, nil, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write init socket: %w", err)
		}
		off += n
		oob = nil
	}
	return nil
}

// send writes v as one frame, passing fds with it.
func (c conn) send(v any, fds ...int) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(data))
	binary.LittleEndian.PutUint32(buf, uint32(len(data)))
	copy(buf[4:], data)
	return c.writeAll(buf, fds...)
}

// recv reads one frame into v and returns the fds that came with it.
func (c conn) recv(v any) ([]int, error) {
	var hdr [4]byte
	fds, err := c.readFull(hdr[:])
	if err != nil {
		return fds, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > 64<<20 {
		return fds, fmt.Errorf("init socket frame of %d bytes", n)
	}
	data := make([]byte, n)
	more, err := c.readFull(data)
	fds = append(fds, more...)
	if err != nil {
		return fds, err
	}
	return fds, json.Unmarshal(data, v)
}
