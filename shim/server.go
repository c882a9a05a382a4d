package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"golang.org/x/sys/unix"
)

// server answers the clients on the shim's socket.
type server struct {
	s        *shim
	l        *net.UnixListener
	handlers sync.WaitGroup
}

// serve accepts connections until the listener closes.
func (sv *server) serve() {
	for {
		c, err := sv.l.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			sv.s.log.Warn("accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		sv.handlers.Add(1)
		go func() {
			defer sv.handlers.Done()
			defer c.Close()
			sv.handle(c)
		}()
	}
}

// close stops accepting and gives the connected clients a moment to get
// their answers.
func (sv *server) close(grace time.Duration) {
	sv.l.Close()
	done := make(chan struct{})
	go func() { sv.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
	}
}

func reply(c net.Conn, r response) error {
	data, _ := json.Marshal(r)
	_, err := c.Write(append(data, '\n'))
	return err
}

// maxRequest bounds a request line.
const maxRequest = 4096

func (sv *server) handle(c *net.UnixConn) {
	br := bufio.NewReaderSize(c, 512)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := br.ReadSlice('\n')
	if err != nil || len(line) > maxRequest {
		return
	}
	c.SetReadDeadline(time.Time{})
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		reply(c, errorResponse(fmt.Errorf("bad request: %v: %w", err, errdefs.ErrInvalidArgument)))
		return
	}
	// A request lives as long as its connection: a client that hangs
	// up cancels it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := sv.s
	var resp response
	switch req.Op {
	case "ping":
	case "start":
		resp.Pid, err = s.start(ctx)
	case "attach":
		sv.attach(ctx, c, br, req.Stdin)
		return
	case "wait":
		go watchHangup(br, cancel)
		var e Exit
		if e, err = s.wait(ctx); err == nil {
			resp.Exit = &e
		}
	case "stop":
		go watchHangup(br, cancel)
		err = s.stop(ctx, req.Signal, time.Duration(req.Timeout))
	case "kill":
		err = s.kill(ctx, req.Signal)
	case "pause":
		err = s.pause(ctx)
	case "resume":
		err = s.resume(ctx)
	case "resize":
		err = s.resize(req.Height, req.Width)
	default:
		err = fmt.Errorf("unknown shim request %q: %w", req.Op, errdefs.ErrNotImplemented)
	}
	if err != nil {
		resp = errorResponse(err)
	}
	reply(c, resp)
}

// watchHangup cancels when the client closes the connection.
func watchHangup(r io.Reader, cancel context.CancelFunc) {
	io.Copy(io.Discard, r)
	cancel()
}

// wait returns the next exit, or the last one once the container has
// exited for good.
func (s *shim) wait(ctx context.Context) (Exit, error) {
	s.mu.Lock()
	if s.st.Status == StatusExited && s.lastExit != nil {
		e := *s.lastExit
		s.mu.Unlock()
		return e, nil
	}
	ch := make(chan Exit, 1)
	if s.waiters == nil {
		s.waiters = map[chan Exit]struct{}{}
	}
	s.waiters[ch] = struct{}{}
	s.mu.Unlock()
	select {
	case e := <-ch:
		return e, nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.waiters, ch)
		s.mu.Unlock()
		select {
		case e := <-ch:
			return e, nil
		default:
		}
		return Exit{}, ctx.Err()
	}
}

// attach streams the output to c until the process exits, and copies
// what c sends into the container's stdin.
func (sv *server) attach(ctx context.Context, c *net.UnixConn, br *bufio.Reader, withStdin bool) {
	s := sv.s
	cl := &attachClient{ch: make(chan []byte, attachQueue)}
	s.mu.Lock()
	if s.st.Status == StatusExited && s.lastExit != nil {
		e := *s.lastExit
		s.mu.Unlock()
		if reply(c, response{}) == nil {
			writeExit(c, e)
		}
		return
	}
	var r *run
	if withStdin && s.cfg.OpenStdin && s.cur != nil && s.cur.io.stdin != nil {
		r = s.cur
	}
	// Registered before the answer: the client sees all output after it.
	s.clients.add(cl)
	s.mu.Unlock()
	if err := reply(c, response{}); err != nil {
		s.clients.drop(cl)
	}
	if r != nil {
		go s.feedStdin(r, br)
	}
	var werr error
	for f := range cl.ch {
		if werr != nil {
			continue
		}
		c.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, werr = c.Write(f); werr != nil {
			s.clients.drop(cl)
		}
	}
	if werr != nil {
		return
	}
	if cl.exit != nil {
		writeExit(c, *cl.exit)
		return
	}
	data, _ := json.Marshal(errorResponse(fmt.Errorf("attach dropped: the client did not keep up with the output: %w", errdefs.ErrUnavailable)))
	c.Write(appendFrame(nil, frameError, data))
}

func writeExit(c net.Conn, e Exit) {
	data, _ := json.Marshal(e)
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.Write(appendFrame(nil, frameExit, data))
}

// feedStdin copies a client's input into the container's stdin. Under
// StdinOnce the end of the first client's input closes the container's
// stdin (with a tty: sends ^D, the terminal's end of input).
func (s *shim) feedStdin(r *run, in io.Reader) {
	var buf []byte
	ended := false
	for {
		typ, p, err := readFrame(in, buf)
		if err != nil {
			break // the client went: a detach unless it said its input ended
		}
		buf = p[:0]
		if typ == frameStdinEOF {
			ended = true
			break
		}
		if typ != frameStdin {
			continue
		}
		if _, err := r.io.stdin.Write(p); err != nil {
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, unix.EPIPE) {
				s.log.Warn("copy stdin", "err", err)
			}
			return
		}
	}
	if !s.cfg.StdinOnce || !ended {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.stdinOnce {
		return
	}
	r.stdinOnce = true
	if r.io.console != nil {
		r.io.console.Write([]byte{4})
		return
	}
	r.io.stdin.Close()
}

// stop is Docker's stop: the stop signal, SIGKILL after the timeout, and
// no restart afterwards.
func (s *shim) stop(ctx context.Context, signal string, timeout time.Duration) error {
	if signal == "" {
		signal = s.cfg.StopSignal
	}
	if signal == "" {
		signal = "SIGTERM"
	}
	sig, err := parseSignal(signal)
	if err != nil {
		return err
	}
	if timeout < 0 {
		switch t := s.cfg.StopTimeout; {
		case t == 0:
			timeout = 10 * time.Second
		case t < 0:
			timeout = -1
		default:
			timeout = time.Duration(t) * time.Second
		}
	}
	s.mu.Lock()
	s.st.ManualStop = true
	s.cancelLocked()
	status, r := s.st.Status, s.cur
	s.saveLocked()
	s.mu.Unlock()
	switch status {
	case StatusExited, StatusDead:
		return nil
	case StatusRestarting:
		select {
		case <-s.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.signal(ctx, r, sig, status == StatusPaused)
	var expired <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-r.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-expired:
	}
	s.signal(ctx, r, unix.SIGKILL, true)
	select {
	case <-r.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cancelLocked makes the next exit final and cuts a back-off short; s.mu
// is held.
func (s *shim) cancelLocked() {
	s.cancelled = true
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

// signal sends sig to the container's init (SIGKILL to all its
// processes), and thaws a paused container so that the signal is
// delivered.
func (s *shim) signal(ctx context.Context, r *run, sig unix.Signal, thaw bool) {
	if err := s.rt.Kill(ctx, s.cfg.ID, sig, sig == unix.SIGKILL); err != nil {
		s.log.Debug("kill", "signal", sig, "err", err)
	}
	if thaw {
		s.thaw(ctx, r)
	}
}

// thaw resumes r if it is paused, as Docker does after a stop signal.
func (s *shim) thaw(ctx context.Context, r *run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Status == StatusPaused && s.cur == r {
		if err := s.rt.Resume(ctx, s.cfg.ID); err == nil {
			s.st.Status = StatusRunning
			s.saveLocked()
		}
	}
}

// kill is Docker's kill: the signal (SIGKILL by default); like Docker,
// a kill with the stop signal (any signal when no stop signal is set, and
// SIGKILL always) cancels the restart policy, and any kill counts as a
// manual stop for unless-stopped.
func (s *shim) kill(ctx context.Context, signal string) error {
	if signal == "" {
		signal = "SIGKILL"
	}
	sig, err := parseSignal(signal)
	if err != nil {
		return err
	}
	cancel := sig == unix.SIGKILL || s.cfg.StopSignal == ""
	if !cancel {
		stopSig, _ := parseSignal(s.cfg.StopSignal)
		cancel = sig == stopSig
	}
	s.mu.Lock()
	status, r := s.st.Status, s.cur
	switch status {
	case StatusExited, StatusDead:
		s.mu.Unlock()
		return fmt.Errorf("container %s is not running: %w", s.cfg.ID, errdefs.ErrConflict)
	}
	s.st.ManualStop = true
	if cancel {
		s.cancelLocked()
	}
	s.saveLocked()
	s.mu.Unlock()
	if status == StatusRestarting {
		return nil
	}
	if err := s.rt.Kill(ctx, s.cfg.ID, sig, false); err != nil {
		select {
		case <-r.exited:
			return nil // it died meanwhile
		default:
		}
		return fmt.Errorf("kill container %s: %w", s.cfg.ID, err)
	}
	if cancel && status == StatusPaused {
		s.thaw(ctx, r)
	}
	return nil
}

func (s *shim) pause(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.st.Status {
	case StatusRunning:
	case StatusPaused:
		return fmt.Errorf("container %s is already paused: %w", s.cfg.ID, errdefs.ErrConflict)
	default:
		return fmt.Errorf("container %s is not running: %w", s.cfg.ID, errdefs.ErrConflict)
	}
	if err := s.rt.Pause(ctx, s.cfg.ID); err != nil {
		return fmt.Errorf("pause container %s: %w", s.cfg.ID, err)
	}
	s.st.Status = StatusPaused
	s.saveLocked()
	return nil
}

func (s *shim) resume(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Status != StatusPaused {
		return fmt.Errorf("container %s is not paused: %w", s.cfg.ID, errdefs.ErrConflict)
	}
	if err := s.rt.Resume(ctx, s.cfg.ID); err != nil {
		return fmt.Errorf("resume container %s: %w", s.cfg.ID, err)
	}
	s.st.Status = StatusRunning
	s.saveLocked()
	return nil
}

// resize sets the pty's window size; without a tty there is nothing to
// resize, as in containerd's shim.
func (s *shim) resize(height, width uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.io.console == nil {
		return nil
	}
	conn, err := s.cur.io.console.SyscallConn()
	if err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	ws := &unix.Winsize{Row: height, Col: width}
	var ierr error
	if err := conn.Control(func(fd uintptr) { ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	if ierr != nil {
		return fmt.Errorf("resize: %w", ierr)
	}
	return nil
}
