package engine

import (
	"context"
	"os"
	"os/signal"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/shim"
	"golang.org/x/sys/unix"
)

// Attach connects streams to a running container until its process
// exits (its exit is returned) or ctx ends (a detach).
func (e *Engine) Attach(ctx context.Context, ref string, o shim.AttachOptions) (shim.Exit, error) {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return shim.Exit{}, err
	}
	st, err := e.state(c)
	if err != nil {
		return shim.Exit{}, err
	}
	if st.Status == "paused" {
		return shim.Exit{}, errorf(errdefs.ErrConflict, "You cannot attach to a paused container, unpause it first")
	}
	cl, _, err := e.shimFor(ctx, c)
	if err != nil {
		return shim.Exit{}, errorf(errdefs.ErrConflict, "You cannot attach to a stopped container, start it first")
	}
	defer cl.Close()
	e.containerEvent(ctx, c, "attach", nil)
	return cl.Attach(ctx, o)
}

// Resize sets the size of a container's terminal.
func (e *Engine) Resize(ctx context.Context, ref string, height, width uint16) error {
	c, err := e.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	cl, _, err := e.shimFor(ctx, c)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.Resize(ctx, height, width)
}

// ResizeOnWinch gives the container's terminal the size of tty now and
// whenever it changes (SIGWINCH), until stop is called.
func (e *Engine) ResizeOnWinch(ctx context.Context, id string, tty *os.File) (stop func()) {
	resize := func() {
		ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ)
		if err == nil {
			e.Resize(ctx, id, ws.Row, ws.Col)
		}
	}
	resize()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				resize()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
