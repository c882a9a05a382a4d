package shim_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestAttachStdin: cat echoes what the client sends; under StdinOnce the
// end of the client's input closes the container's stdin and cat exits.
func TestAttachStdin(t *testing.T) {
	cfg := config(t, nil, "cat")
	cfg.OpenStdin, cfg.StdinOnce = true, true
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	in, inw := io.Pipe()
	var out buffer
	res := c.attachStart(ctx, shim.AttachOptions{Stdin: in, Stdout: &out})
	io.WriteString(inw, "ping\n")
	waitFor(t, &out, "ping\n", 10*time.Second)
	io.WriteString(inw, "pong\n")
	waitFor(t, &out, "ping\npong\n", 10*time.Second)
	inw.Close()
	select {
	case r := <-res:
		if r.err != nil || r.exit.Code != 0 {
			t.Fatalf("attach: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cat did not exit when stdin ended")
	}
	if out.String() != "ping\npong\n" {
		t.Errorf("output %q", out.String())
	}
}

// TestAttachStdinKeptOpen: without StdinOnce a client's end of input
// leaves the container's stdin open for the next client.
func TestAttachStdinKeptOpen(t *testing.T) {
	cfg := config(t, nil, "cat")
	cfg.OpenStdin = true
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	var out buffer
	res := c.attachStart(ctx, shim.AttachOptions{Stdin: strings.NewReader("one\n"), Stdout: &out})
	waitFor(t, &out, "one\n", 10*time.Second)
	var out2 buffer
	res2 := make(chan attachResult, 1)
	go func() {
		e, err := c.c.Attach(ctx, shim.AttachOptions{Stdin: strings.NewReader("two\n"), Stdout: &out2})
		res2 <- attachResult{e, err}
	}()
	waitFor(t, &out2, "two\n", 10*time.Second)
	if st := c.state(); st.Status != shim.StatusRunning {
		t.Fatalf("state %+v", st)
	}
	if err := c.c.Stop(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan attachResult{res, res2} {
		r := <-ch
		if r.err != nil || r.exit.Code != 137 {
			t.Errorf("attach: %+v", r)
		}
	}
}

// TestTty: output comes through the pty, and Resize changes what
// `stty size` reports.
func TestTty(t *testing.T) {
	cfg := config(t, func(s *specs.Spec) { s.Process.Terminal = true },
		"sh", "-c", "stty size; read x; stty size; echo out; echo err >&2")
	cfg.Tty, cfg.OpenStdin = true, true
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if err := c.c.Resize(ctx, 24, 80); err != nil {
		t.Fatal(err)
	}
	in, inw := io.Pipe()
	var out, errb buffer
	res := c.attachStart(ctx, shim.AttachOptions{Stdin: in, Stdout: &out, Stderr: &errb})
	waitFor(t, &out, "24 80\r\n", 10*time.Second)
	if err := c.c.Resize(ctx, 40, 100); err != nil {
		t.Fatal(err)
	}
	io.WriteString(inw, "\n")
	r := <-res
	if r.err != nil || r.exit.Code != 0 {
		t.Fatalf("attach: %+v", r)
	}
	if got := out.String(); !strings.Contains(got, "40 100\r\n") || !strings.Contains(got, "out\r\nerr\r\n") {
		t.Errorf("output %q", got)
	}
	if errb.String() != "" {
		t.Errorf("stderr with a tty: %q", errb.String())
	}
}

// TestTtyStdinOnce: with a tty, the end of the client's input under
// StdinOnce is the terminal's end of input.
func TestTtyStdinOnce(t *testing.T) {
	cfg := config(t, func(s *specs.Spec) { s.Process.Terminal = true }, "cat")
	cfg.Tty, cfg.OpenStdin, cfg.StdinOnce = true, true, true
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	var out buffer
	r := <-c.attachStart(ctx, shim.AttachOptions{Stdin: strings.NewReader("hello\n"), Stdout: &out})
	if r.err != nil || r.exit.Code != 0 {
		t.Fatalf("attach: %+v", r)
	}
	// The terminal echoes the line, then cat writes it.
	if got := out.String(); strings.Count(got, "hello\r\n") != 2 {
		t.Errorf("output %q", got)
	}
}
