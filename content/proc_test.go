package content_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/content"
	"github.com/berth-dev/berth/errdefs"
)

// The multi-process tests re-execute the test binary; with this variable set
// it runs a helper instead of the tests.
const helperEnv = "BERTH_CONTENT_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := helper(mode, os.Getenv("STORE")); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashSet is what the crash helper writes: blobs of several sizes, so that
// kills land in small commits as well as in long writes.
var crashSet = []int{1, 700, 4096, 64 << 10, 300 << 10, 1 << 20, 9000, 2 << 20}

func helper(mode, root string) error {
	ctx := context.Background()
	s, err := content.Open(root)
	if err != nil {
		return err
	}
	switch mode {
	case "same":
		data, desc := blob(42, 4<<20)
		return content.WriteBlob(ctx, s, "same", &slowReader{bytes.NewReader(data)}, desc)
	case "crash":
		for i, size := range crashSet {
			data, desc := blob(uint64(100+i), size)
			r := &throttled{r: bytes.NewReader(data)}
			if err := content.WriteBlob(ctx, s, "crash-"+strconv.Itoa(i), r, desc); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// throttled reads 16 KiB at a time with a pause, so that a kill lands
// mid-write.
type throttled struct{ r io.Reader }

func (t *throttled) Read(p []byte) (int, error) {
	time.Sleep(100 * time.Microsecond)
	return t.r.Read(p[:min(len(p), 16<<10)])
}

func helperCmd(t *testing.T, mode, root string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "STORE="+root)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestConcurrentProcesses(t *testing.T) {
	s := newStore(t)
	var cmds []*exec.Cmd
	for range 3 {
		cmd := helperCmd(t, "same", s.Root())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer process %d: %v", i, err)
		}
	}
	_, desc := blob(42, 4<<20)
	if _, err := s.Info(context.Background(), desc.Digest); err != nil {
		t.Errorf("blob after concurrent writers: %v", err)
	}
	if n := verifyStore(t, s); n != 1 {
		t.Errorf("%d blobs, want 1", n)
	}
	if st := mustIngests(t, s); len(st) != 0 {
		t.Errorf("ingests left: %+v", st)
	}
}

// TestCrash kills a writer process with SIGKILL at random moments, again
// and again on the same store. After every kill the store must hold only
// valid blobs, and a Writer for any ref must be had at once (no stale lock)
// and resume what the dead process wrote. Its offset is left for the next
// victim, so resumption is itself killed too.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	s := newStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	iterations, resumed, finished := 40, 0, 0
	for i := 0; i < iterations; i++ {
		cmd := helperCmd(t, "crash", s.Root())
		cmd.Stderr = nil
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err == nil {
			finished++
		}
		verifyStore(t, s)
		for j, size := range crashSet {
			_, desc := blob(uint64(100+j), size)
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			w, err := s.Writer(wctx, "crash-"+strconv.Itoa(j), desc)
			cancel()
			if errdefs.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				t.Fatalf("iteration %d: Writer for crash-%d after SIGKILL: %v", i, j, err)
			}
			if w.Offset() > 0 {
				resumed++
			}
			w.Close()
		}
		// Now and then start from scratch so that early blobs and small
		// commits keep being killed too.
		if i%10 == 9 {
			os.RemoveAll(s.Root())
			if s, _ = content.Open(s.Root()); s == nil {
				t.Fatal("reopen")
			}
		}
	}
	// Finish everything from whatever state the last kill left.
	for j, size := range crashSet {
		data, desc := blob(uint64(100+j), size)
		if err := content.WriteBlob(ctx, s, "crash-"+strconv.Itoa(j), bytes.NewReader(data), desc); err != nil {
			t.Fatalf("final WriteBlob crash-%d: %v", j, err)
		}
	}
	if n := verifyStore(t, s); n != len(crashSet) {
		t.Errorf("%d blobs at the end, want %d", n, len(crashSet))
	}
	if st := mustIngests(t, s); len(st) != 0 {
		t.Errorf("ingests left: %+v", st)
	}
	t.Logf("%d kills, %d writers resumed a dead writer's data, %d helpers finished before the kill", iterations, resumed, finished)
}
