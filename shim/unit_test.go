package shim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/logs"
	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{
		"SIGTERM": unix.SIGTERM, "TERM": unix.SIGTERM, "term": unix.SIGTERM, "9": unix.SIGKILL,
		"SIGRTMIN+1": 35, "RTMAX-1": 63, "usr1": unix.SIGUSR1,
	} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65", "-1", "SIGNOPE", "RTMIN+40"} {
		if _, err := parseSignal(in); !errdefs.IsInvalidArgument(err) {
			t.Errorf("parseSignal(%q): %v, want invalid argument", in, err)
		}
	}
}

// TestBackoff: moby's restart manager: 100 ms doubling to a minute, back
// to 100 ms after a run of 10 s.
func TestBackoff(t *testing.T) {
	s := &shim{cfg: Config{Restart: RestartPolicy{Name: "always"}}}
	var got []time.Duration
	for range 12 {
		ok, d := s.shouldRestart(0, time.Second)
		if !ok {
			t.Fatal("always did not restart")
		}
		got = append(got, d)
	}
	want := "[100ms 200ms 400ms 800ms 1.6s 3.2s 6.4s 12.8s 25.6s 51.2s 1m0s 1m0s]"
	if fmt.Sprint(got) != want {
		t.Errorf("delays %v, want %s", got, want)
	}
	if _, d := s.shouldRestart(0, 10*time.Second); d != 100*time.Millisecond {
		t.Errorf("after a long run: %v", d)
	}
}

func TestRestartPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy RestartPolicy
		code   int
		count  int
		manual bool
		want   bool
	}{
		{RestartPolicy{}, 1, 0, false, false},
		{RestartPolicy{Name: "no"}, 1, 0, false, false},
		{RestartPolicy{Name: "always"}, 0, 5, true, true}, // a manual stop cancels separately
		{RestartPolicy{Name: "unless-stopped"}, 0, 0, false, true},
		{RestartPolicy{Name: "unless-stopped"}, 0, 0, true, false},
		{RestartPolicy{Name: "on-failure"}, 0, 0, false, false},
		{RestartPolicy{Name: "on-failure"}, 1, 100, false, true},
		{RestartPolicy{Name: "on-failure", MaxRetries: 2}, 1, 1, false, true},
		{RestartPolicy{Name: "on-failure", MaxRetries: 2}, 1, 2, false, false},
	} {
		s := &shim{cfg: Config{Restart: tc.policy}, st: State{RestartCount: tc.count, ManualStop: tc.manual}}
		if got, _ := s.shouldRestart(tc.code, time.Second); got != tc.want {
			t.Errorf("%+v: restart %v, want %v", tc, got, tc.want)
		}
	}
	for _, p := range []RestartPolicy{{Name: "sometimes"}, {Name: "always", MaxRetries: 1}, {Name: "on-failure", MaxRetries: -1}} {
		if _, err := restartPolicy(p); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%+v: %v", p, err)
		}
	}
}

// TestLogLines: whole lines are logged as they come, a partial line waits
// for its end or for 16 KiB, and the rest is logged at the end.
func TestLogLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := logs.NewWriter(path, logs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &shim{logw: w, log: slog.New(slog.DiscardHandler)}
	f, r, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.copyOutput(f, "stdout", frameStdout); close(done) }()
	long := strings.Repeat("x", logChunk+10)
	for _, chunk := range []string{"a", "b\nc", "d\n", long[:5000], long[5000:], "\ntail"} {
		io.WriteString(r, chunk)
		time.Sleep(5 * time.Millisecond)
	}
	r.Close()
	<-done
	w.Close()
	var got []string
	logs.Read(context.Background(), path, logs.ReadOptions{Tail: -1}, func(e logs.Entry) error {
		got = append(got, string(e.Line))
		return nil
	})
	want := []string{"ab\n", "cd\n", long[:logChunk], long[logChunk:] + "\n", "tail"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records %q,\nwant %q", got, want)
	}
}

func TestErrorClasses(t *testing.T) {
	err := fmt.Errorf("create: %w", &remoteError{msg: "x", classes: []error{errExecNotFound, errdefs.ErrNotFound}})
	back := errorResponse(err).err()
	if !errors.Is(back, errExecNotFound) || !errors.Is(back, errdefs.ErrNotFound) || errors.Is(back, errdefs.ErrConflict) {
		t.Errorf("classes lost: %v", errorResponse(err).Classes)
	}
	if back.Error() != err.Error() {
		t.Errorf("message %q", back)
	}
}

func TestFrames(t *testing.T) {
	var b []byte
	b = appendFrame(b, frameStdout, []byte("out"))
	b = appendFrame(b, frameExit, []byte(`{"Code":3}`))
	r := bytes.NewReader(b)
	for _, want := range []struct {
		typ byte
		p   string
	}{{frameStdout, "out"}, {frameExit, `{"Code":3}`}} {
		typ, p, err := readFrame(r, nil)
		if err != nil || typ != want.typ || string(p) != want.p {
			t.Errorf("frame %d %q %v", typ, p, err)
		}
	}
	huge := []byte{frameStdout, 0xff, 0xff, 0xff, 0xff}
	if _, _, err := readFrame(bytes.NewReader(huge), nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("huge frame: %v", err)
	}
}

// socketPair returns both ends of a connected unix socket.
func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "sock")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
		t.Cleanup(func() { c.Close() })
	}
	return conns[0], conns[1]
}

// TestExitedAnswersAtOnce: Wait and Attach on a container that has
// exited for good return its exit without waiting.
func TestExitedAnswersAtOnce(t *testing.T) {
	e := Exit{Code: 7, FinishedAt: time.Now().UTC()}
	s := &shim{st: State{Status: StatusExited}, lastExit: &e, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := s.wait(ctx); err != nil || got.Code != 7 {
		t.Errorf("wait: %+v %v", got, err)
	}
	a, b := socketPair(t)
	sv := &server{s: s}
	go sv.attach(ctx, a, bufio.NewReader(a), false)
	br := bufio.NewReader(b)
	if resp, err := readResponse(ctx, "attach", br); err != nil || resp.Error != "" {
		t.Fatalf("attach answer: %+v %v", resp, err)
	}
	typ, p, err := readFrame(br, nil)
	if err != nil || typ != frameExit || !strings.Contains(string(p), `"Code":7`) {
		t.Errorf("attach frame %d %q %v", typ, p, err)
	}
}

// TestSlowClientDropped: a client that does not read is dropped once its
// queue is full, and the container's output is never blocked.
func TestSlowClientDropped(t *testing.T) {
	var cs clients
	c := &attachClient{ch: make(chan []byte, attachQueue)}
	cs.add(c)
	for range attachQueue + 1 {
		cs.broadcast(frameStdout, []byte("x")) // never blocks
	}
	n := 0
	for range c.ch {
		n++
	}
	if n != attachQueue || c.exit != nil {
		t.Errorf("%d frames queued, exit %v", n, c.exit)
	}
	cs.broadcast(frameStdout, []byte("after")) // no client left: no panic on a closed channel
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadState(dir); !errdefs.IsNotFound(err) {
		t.Errorf("absent: %v", err)
	}
	st := State{Status: StatusRunning, Pid: 42, ShimPid: os.Getpid(), Health: &Health{Status: HealthHealthy, Log: []HealthResult{{ExitCode: 0, Output: "ok"}}}}
	st.ShimStart, _ = procStart(os.Getpid())
	if err := WriteState(dir, st); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(dir)
	if err != nil || got.Pid != 42 || got.Health.Log[0].Output != "ok" || !got.ShimAlive() {
		t.Errorf("read back %+v %v", got, err)
	}
	got.ShimStart++
	if got.ShimAlive() {
		t.Error("alive with another start time")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o644)
	if _, err := ReadState(dir); !errdefs.IsInvalidArgument(err) {
		t.Errorf("corrupt: %v", err)
	}
}
