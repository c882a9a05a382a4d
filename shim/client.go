package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// Client talks to one container's shim. Each call is its own connection,
// so a Client may be used from several goroutines at once.
type Client struct {
	path string
}

// Dial checks that a shim listens on socketPath: errdefs.ErrNotFound or
// ErrUnavailable when none does.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	c := &Client{path: socketPath}
	if _, err := c.call(ctx, request{Op: "ping"}); err != nil {
		return nil, err
	}
	return c, nil
}

// Close releases the client; it holds no connection between calls.
func (c *Client) Close() error { return nil }

// open connects and sends req; the connection closes when ctx ends.
func (c *Client) open(ctx context.Context, req request) (*net.UnixConn, *bufio.Reader, func() bool, error) {
	conn, err := dial(ctx, c.path)
	if err != nil {
		return nil, nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	data, _ := json.Marshal(req)
	if _, err := conn.Write(append(data, '\n')); err != nil {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		return nil, nil, nil, fmt.Errorf("shim %s: %v: %w", req.Op, err, errdefs.ErrUnavailable)
	}
	return conn, bufio.NewReader(conn), stop, nil
}

// readResponse reads the shim's answer line.
func readResponse(ctx context.Context, op string, br *bufio.Reader) (response, error) {
	var resp response
	line, err := br.ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return resp, ctx.Err()
		}
		return resp, fmt.Errorf("shim %s: no answer: %v: %w", op, err, errdefs.ErrUnavailable)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("shim %s: bad answer: %v: %w", op, err, errdefs.ErrUnavailable)
	}
	return resp, resp.err()
}

// call sends req and reads the answer.
func (c *Client) call(ctx context.Context, req request) (response, error) {
	conn, br, stop, err := c.open(ctx, req)
	if err != nil {
		return response{}, err
	}
	defer stop()
	defer conn.Close()
	return readResponse(ctx, req.Op, br)
}

// Start starts the created container and returns its init's pid.
func (c *Client) Start(ctx context.Context) (int, error) {
	resp, err := c.call(ctx, request{Op: "start"})
	return resp.Pid, err
}

// Wait returns the next exit of the container's process (docker wait),
// or the last one once it has exited for good.
func (c *Client) Wait(ctx context.Context) (Exit, error) {
	resp, err := c.call(ctx, request{Op: "wait"})
	if err != nil {
		return Exit{}, err
	}
	if resp.Exit == nil {
		return Exit{}, fmt.Errorf("shim wait: answer without exit: %w", errdefs.ErrUnavailable)
	}
	return *resp.Exit, nil
}

// Stop sends signal ("" for the container's stop signal), SIGKILL after
// timeout (negative: the container's stop timeout), and returns after
// the exit. No restart follows.
func (c *Client) Stop(ctx context.Context, signal string, timeout time.Duration) error {
	_, err := c.call(ctx, request{Op: "stop", Signal: signal, Timeout: int64(timeout)})
	return err
}

// Kill sends signal ("" for SIGKILL) to the container's init. As in
// Docker, a kill with the stop signal (any signal when the container has
// none set) cancels the restart policy for this exit.
func (c *Client) Kill(ctx context.Context, signal string) error {
	_, err := c.call(ctx, request{Op: "kill", Signal: signal})
	return err
}

// Pause freezes the container.
func (c *Client) Pause(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: "pause"})
	return err
}

// Resume thaws a paused container.
func (c *Client) Resume(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: "resume"})
	return err
}

// Resize sets the window size of the container's tty; without a tty it
// does nothing.
func (c *Client) Resize(ctx context.Context, height, width uint16) error {
	_, err := c.call(ctx, request{Op: "resize", Height: height, Width: width})
	return err
}

// AttachOptions are the streams of an attach.
type AttachOptions struct {
	// Stdin is copied into the container when it was created with
	// OpenStdin; its end is the end of input (under StdinOnce it closes
	// the container's stdin).
	Stdin io.Reader
	// Stdout and Stderr receive the output; with a tty everything goes
	// to Stdout. Nil discards the stream.
	Stdout, Stderr io.Writer
	// Attached, if set, is called once the shim has registered the
	// client, before any output: from then on no output is missed, so
	// `run` calls Start after it.
	Attached func()
}

// Attach streams the container's output to o.Stdout and o.Stderr and
// copies o.Stdin into the container until the process exits (it returns
// the Exit) or ctx ends (a detach; it returns ctx.Err()). Attaching to a
// container that has exited returns its Exit at once. Output from before
// the attach is not replayed: it is in the log.
func (c *Client) Attach(ctx context.Context, o AttachOptions) (Exit, error) {
	conn, br, stop, err := c.open(ctx, request{Op: "attach", Stdin: o.Stdin != nil})
	if err != nil {
		return Exit{}, err
	}
	defer stop()
	defer conn.Close()
	if _, err := readResponse(ctx, "attach", br); err != nil {
		return Exit{}, err
	}
	if o.Attached != nil {
		o.Attached()
	}
	if o.Stdin != nil {
		go sendStdin(ctx, conn, o.Stdin)
	}
	out := func(w io.Writer, p []byte) {
		if w != nil {
			w.Write(p)
		}
	}
	var buf []byte
	for {
		typ, p, err := readFrame(br, buf)
		if err != nil {
			if ctx.Err() != nil {
				return Exit{}, ctx.Err()
			}
			return Exit{}, fmt.Errorf("shim attach: %v: %w", err, errdefs.ErrUnavailable)
		}
		buf = p[:0]
		switch typ {
		case frameStdout:
			out(o.Stdout, p)
		case frameStderr:
			out(o.Stderr, p)
		case frameExit:
			var e Exit
			if err := json.Unmarshal(p, &e); err != nil {
				return Exit{}, fmt.Errorf("shim attach: bad exit: %v: %w", err, errdefs.ErrUnavailable)
			}
			return e, nil
		case frameError:
			var resp response
			if err := json.Unmarshal(p, &resp); err != nil || resp.Error == "" {
				return Exit{}, fmt.Errorf("shim attach: bad error frame: %w", errdefs.ErrUnavailable)
			}
			return Exit{}, resp.err()
		default:
			return Exit{}, fmt.Errorf("shim attach: frame type %d: %w", typ, errdefs.ErrUnavailable)
		}
	}
}

// sendStdin sends in as stdin frames, then the end of input — unless ctx
// ends first (a detach), which leaves the container's input open.
func sendStdin(ctx context.Context, conn *net.UnixConn, in io.Reader) {
	buf := make([]byte, 32<<10)
	var frame []byte
	for {
		n, err := in.Read(buf)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			frame = appendFrame(frame[:0], frameStdin, buf[:n])
			if _, werr := conn.Write(frame); werr != nil {
				return
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				conn.Write(appendFrame(nil, frameStdinEOF, nil))
			}
			return
		}
	}
}
