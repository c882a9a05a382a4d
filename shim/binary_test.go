package shim_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestBinaryRuntime runs containers through runc-compatible binaries
// (oci.Binary) instead of the builtin runtime.
func TestBinaryRuntime(t *testing.T) {
	bins := map[string]string{"berth-runtime": ""}
	if p, err := exec.LookPath("runc"); err == nil {
		bins["runc"] = p
	}
	for name, path := range bins {
		t.Run(name, func(t *testing.T) {
			if _, err := oci.Binary(path, t.TempDir()).State(ctxT(t, time.Minute), "none"); errdefs.IsNotImplemented(err) {
				t.Skip(err)
			}
			conf := func(t *testing.T, edit func(*specs.Spec), args ...string) shim.Config {
				cfg := config(t, edit, args...)
				// Where the leftovers check looks.
				spec := readSpec(t, cfg.Bundle)
				spec.Linux.CgroupsPath = "/berth/" + cfg.ID
				testenv.WriteSpec(t, cfg.Bundle, spec)
				cfg.Runtime = path
				if path == "" {
					cfg.Runtime = filepath.Join(filepath.Dir(berth), "berth-runtime")
				}
				return cfg
			}
			t.Run("echo", func(t *testing.T) {
				cfg := conf(t, nil, "sh", "-c", "echo hello; echo oops >&2; exit 3")
				c := mustLaunch(t, cfg)
				var out, errb buffer
				r := <-c.attachStart(ctxT(t, time.Minute), shim.AttachOptions{Stdout: &out, Stderr: &errb})
				if r.err != nil || r.exit.Code != 3 || out.String() != "hello\n" || errb.String() != "oops\n" {
					t.Errorf("attach: %+v, %q, %q", r, out.String(), errb.String())
				}
				c.waitFinal()
			})
			t.Run("tty", func(t *testing.T) {
				cfg := conf(t, func(s *specs.Spec) { s.Process.Terminal = true }, "sh", "-c", "read x; stty size")
				cfg.Tty, cfg.OpenStdin = true, true
				c := mustLaunch(t, cfg)
				ctx := ctxT(t, time.Minute)
				in, inw := io.Pipe()
				var out buffer
				res := c.attachStart(ctx, shim.AttachOptions{Stdin: in, Stdout: &out})
				if err := c.c.Resize(ctx, 33, 77); err != nil {
					t.Fatal(err)
				}
				io.WriteString(inw, "\n")
				if r := <-res; r.err != nil || r.exit.Code != 0 || !strings.Contains(out.String(), "33 77\r\n") {
					t.Errorf("attach: %+v %q", r, out.String())
				}
				c.waitFinal()
			})
			t.Run("stop", func(t *testing.T) {
				cfg := conf(t, nil, "sleep", "100")
				c := mustLaunch(t, cfg)
				ctx := ctxT(t, time.Minute)
				if _, err := c.c.Start(ctx); err != nil {
					t.Fatal(err)
				}
				if err := c.c.Stop(ctx, "", 200*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				if st := c.waitFinal(); st.ExitCode != 137 {
					t.Errorf("state %+v", st)
				}
			})
			t.Run("missing", func(t *testing.T) {
				cfg := conf(t, nil, "/no/such/program")
				if _, err := launch(t, cfg); !errors.Is(err, oci.ErrExecNotFound) {
					t.Fatalf("launch: %v, want ErrExecNotFound", err)
				}
			})
		})
	}
}

func readSpec(t *testing.T, bundle string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}
