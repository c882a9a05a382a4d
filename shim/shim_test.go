package shim_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/logs"
	"github.com/berth-dev/berth/shim"
)

func TestEchoAttachAndLog(t *testing.T) {
	cfg := config(t, nil, "sh", "-c", "echo hello; echo oops >&2; exit 3")
	c := mustLaunch(t, cfg)
	if st := c.state(); st.Status != shim.StatusCreated || st.Pid <= 0 || !st.ShimAlive() {
		t.Fatalf("after launch: %+v", st)
	}
	ctx := ctxT(t, time.Minute)
	var out, errb buffer
	r := <-c.attachStart(ctx, shim.AttachOptions{Stdout: &out, Stderr: &errb})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.exit.Code != 3 || r.exit.OOMKilled || r.exit.FinishedAt.IsZero() {
		t.Errorf("exit = %+v, want code 3", r.exit)
	}
	if out.String() != "hello\n" || errb.String() != "oops\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errb.String())
	}
	st := c.waitFinal()
	if st.ExitCode != 3 || st.StartedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("state = %+v", st)
	}
	var got []string
	err := logs.Read(ctx, cfg.LogPath, logs.ReadOptions{Tail: -1}, func(e logs.Entry) error {
		got = append(got, e.Stream+":"+string(e.Line))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "stdout:hello\n|stderr:oops\n" && strings.Join(got, "|") != "stderr:oops\n|stdout:hello\n" {
		t.Errorf("log = %q", got)
	}
	// After the final exit the socket is gone.
	if _, err := shim.Dial(ctx, cfg.SocketPath); err == nil {
		t.Error("dial after final exit succeeded")
	}
	if _, err := os.Stat(cfg.SocketPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}
