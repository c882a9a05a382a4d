package shim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// maxSunPath is the room for a path in sockaddr_un, less the trailing NUL.
const maxSunPath = 107

// withShortPath calls fn with a name for path that fits in sun_path: the
// path itself when it is short, else /proc/self/fd/<dirfd>/<base> through
// an O_PATH descriptor of its directory, held open during fn.
func withShortPath(path string, fn func(name string) error) error {
	if len(path) <= maxSunPath {
		return fn(path)
	}
	dir, base := filepath.Split(path)
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	name := "/proc/self/fd/" + strconv.Itoa(fd) + "/" + base
	if len(name) > maxSunPath {
		return fmt.Errorf("socket name %s is too long: %w", base, errdefs.ErrInvalidArgument)
	}
	return fn(name)
}

// listen listens on the unix socket path, replacing a stale socket file.
// Closing the listener does not remove the file.
func listen(path string) (*net.UnixListener, error) {
	os.Remove(path)
	var l *net.UnixListener
	err := withShortPath(path, func(name string) error {
		var err error
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		os.Remove(path)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}

// dial connects to the shim's socket: errdefs.ErrNotFound when there is
// no socket, ErrUnavailable when nothing listens on it.
func dial(ctx context.Context, path string) (*net.UnixConn, error) {
	var c net.Conn
	err := withShortPath(path, func(name string) error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "unix", name)
		return err
	})
	switch {
	case err == nil:
		return c.(*net.UnixConn), nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("shim socket %s: %w", path, errdefs.ErrNotFound)
	case errors.Is(err, unix.ECONNREFUSED):
		return nil, fmt.Errorf("no shim listens on %s: %w", path, errdefs.ErrUnavailable)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		return nil, fmt.Errorf("dial shim %s: %v: %w", path, err, errdefs.ErrUnavailable)
	}
}

// parseSignal reads a signal as Docker does: a number, or a name with or
// without "SIG", in any case.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal: %s: %w", s, errdefs.ErrInvalidArgument)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	// Real-time signals: SIGRTMIN+n, SIGRTMAX-n.
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && 34+n <= 64 {
			return unix.Signal(34 + n), nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMAX-"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && 64-n >= 34 {
			return unix.Signal(64 - n), nil
		}
	}
	return 0, fmt.Errorf("invalid signal: %s: %w", s, errdefs.ErrInvalidArgument)
}
