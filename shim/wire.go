package shim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/berth-dev/berth/errdefs"
)

// request is the one JSON line a client writes on a new connection.
type request struct {
	Op      string `json:"op"` // start, attach, wait, stop, kill, pause, resume, resize, ping
	Signal  string `json:"signal,omitempty"`
	Timeout int64  `json:"timeout,omitempty"` // stop: nanoseconds, negative for the default
	Stdin   bool   `json:"stdin,omitempty"`   // attach: stdin follows
	Height  uint16 `json:"height,omitempty"`
	Width   uint16 `json:"width,omitempty"`
}

// response is the shim's JSON line in answer; for an attach, frames follow
// a response without an error.
type response struct {
	Error   string   `json:"error,omitempty"`
	Classes []string `json:"classes,omitempty"`
	Pid     int      `json:"pid,omitempty"`
	Exit    *Exit    `json:"exit,omitempty"`
}

// Frame types of an attach stream.
const (
	frameStdout byte = 1
	frameStderr byte = 2
	frameExit   byte = 3 // payload: Exit as JSON; the last frame
	frameError  byte = 4 // payload: response as JSON; the last frame
	// From the client: its input, and the end of its input. A client that
	// goes without frameStdinEOF has detached: its input did not end.
	frameStdin    byte = 5
	frameStdinEOF byte = 6
)

// maxFrame bounds a frame's payload, against a corrupt stream.
const maxFrame = 1 << 20

// appendFrame appends a frame of type typ carrying p to b.
func appendFrame(b []byte, typ byte, p []byte) []byte {
	b = append(b, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[len(b)-4:], uint32(len(p)))
	return append(b, p...)
}

// readFrame reads one frame, reusing buf for its payload.
func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("attach frame of %d bytes: %w", n, errdefs.ErrInvalidArgument)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("attach frame: %w", io.ErrUnexpectedEOF)
	}
	return hdr[0], buf, nil
}

// errorClasses carry an error's classes across the socket and the launch
// report, so that errors.Is works on the caller's side.
var errorClasses = []struct {
	name string
	err  error
}{
	{"notfound", errdefs.ErrNotFound},
	{"exists", errdefs.ErrAlreadyExists},
	{"invalid", errdefs.ErrInvalidArgument},
	{"precondition", errdefs.ErrFailedPrecondition},
	{"conflict", errdefs.ErrConflict},
	{"unavailable", errdefs.ErrUnavailable},
	{"notimplemented", errdefs.ErrNotImplemented},
	{"execnotfound", errExecNotFound},
	{"execpermission", errExecPermission},
	{"canceled", context.Canceled},
	{"deadline", context.DeadlineExceeded},
}

// errorResponse encodes err with its classes.
func errorResponse(err error) response {
	r := response{Error: err.Error()}
	for _, c := range errorClasses {
		if errors.Is(err, c.err) {
			r.Classes = append(r.Classes, c.name)
		}
	}
	return r
}

// remoteError is an error decoded from a response.
type remoteError struct {
	msg     string
	classes []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.classes }

// err decodes r's error, nil if it has none.
func (r response) err() error {
	if r.Error == "" {
		return nil
	}
	e := &remoteError{msg: r.Error}
	for _, name := range r.Classes {
		for _, c := range errorClasses {
			if c.name == name {
				e.classes = append(e.classes, c.err)
			}
		}
	}
	return e
}
