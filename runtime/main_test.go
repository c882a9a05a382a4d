package runtime_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// berthRuntime is the berth-runtime link to the binary under test: $BERTH_BIN
// (used in the cgroup v2 VM), else a fresh build of ./cmd/berth.
var berthRuntime string

func TestMain(m *testing.M) {
	bin := os.Getenv("BERTH_BIN")
	tmp, err := os.MkdirTemp("", "berth-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bin == "" && os.Geteuid() == 0 {
		if bin, err = testenv.BerthBinary(tmp); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if bin != "" {
		berthRuntime = filepath.Join(tmp, "berth-runtime")
		os.Remove(berthRuntime) // make made it already
		if err := os.Symlink(bin, berthRuntime); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(tmp)
	if code == 0 && leftovers() {
		code = 1
	}
	os.Exit(code)
}

// leftovers reports (and lists) any cgroup of this test binary's
// containers (ids t<pid>-N under the default /berth parent) that outlived
// the tests: every test must delete what it made.
func leftovers() bool {
	return testenv.CgroupLeftovers(fmt.Sprintf("berth/t%d-*", os.Getpid()))
}

// rt is one test's runtime: its own state root.
type rt struct {
	t    *testing.T
	root string
}

func newRT(t *testing.T) *rt {
	t.Helper()
	testenv.RequiresRoot(t)
	testenv.RequiresBusybox(t)
	r := &rt{t: t, root: t.TempDir()}
	t.Cleanup(func() {
		// Whatever a failed test left: kill and delete it.
		out, _ := exec.Command(berthRuntime, "--root", r.root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			exec.Command(berthRuntime, "--root", r.root, "delete", "-f", id).Run()
		}
	})
	return r
}

var idSeq atomic.Int64

// id returns a container id unique within the test binary.
func id(t *testing.T) string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), idSeq.Add(1))
}

// result is what one runtime invocation did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs berth-runtime --root <root> args..., waiting at most a minute.
func (r *rt) run(args ...string) result {
	r.t.Helper()
	return r.runIn(nil, args...)
}

func (r *rt) runIn(stdin []byte, args ...string) result {
	r.t.Helper()
	cmd := exec.Command(berthRuntime, append([]string{"--root", r.root}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start %v: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		r.t.Fatalf("berth-runtime %v: timed out; stderr: %s", args, errb.String())
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

// must runs args and fails the test unless they exit 0.
func (r *rt) must(args ...string) string {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("berth-runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// runBundle runs a fresh busybox bundle with args in the foreground and
// returns its output; edit may change the spec.
func (r *rt) runBundle(edit func(*specs.Spec), args ...string) result {
	r.t.Helper()
	bundle := testenv.Bundle(r.t, edit, args...)
	return r.run("run", "--bundle", bundle, id(r.t))
}
