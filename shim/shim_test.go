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

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		kill string // sent once it runs
		want int
	}{
		{"zero", []string{"true"}, "", 0},
		{"one", []string{"false"}, "", 1},
		{"kill-9", []string{"sleep", "100"}, "9", 137},
		{"kill-default", []string{"sleep", "100"}, "", 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLaunch(t, config(t, nil, tc.args...))
			ctx := ctxT(t, time.Minute)
			pid, err := c.c.Start(ctx)
			if err != nil || pid <= 0 {
				t.Fatalf("start: %d %v", pid, err)
			}
			if tc.args[0] == "sleep" {
				if err := c.c.Kill(ctx, tc.kill); err != nil {
					t.Fatal(err)
				}
			}
			if e := c.waitExit(ctx); e.Code != tc.want {
				t.Errorf("exit %d, want %d", e.Code, tc.want)
			}
			if st := c.waitFinal(); st.ExitCode != tc.want || st.RestartCount != 0 {
				t.Errorf("state %+v", st)
			}
		})
	}
}

func TestWaitFromSecondClient(t *testing.T) {
	cfg := config(t, nil, "sh", "-c", "sleep 0.5; exit 7")
	c := mustLaunch(t, cfg)
	ctx := ctxT(t, time.Minute)
	if _, err := c.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	results := make(chan int, 2)
	for range 2 {
		go func() {
			c2, err := shim.Dial(ctx, cfg.SocketPath)
			if err != nil {
				t.Error(err)
				results <- -1
				return
			}
			defer c2.Close()
			e, err := c2.Wait(ctx)
			if err != nil {
				t.Error(err)
			}
			results <- e.Code
		}()
	}
	for range 2 {
		if code := <-results; code != 7 {
			t.Errorf("wait: code %d, want 7", code)
		}
	}
}
