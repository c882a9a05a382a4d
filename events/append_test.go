package events

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// helperEnv makes the test binary an appender: "path writer goroutines
// count maxSize" (see TestMain).
const helperEnv = "BERTH_EVENTS_TEST_APPEND"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		if err := helperAppend(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// payload makes lines longer than PIPE_BUF (4 KiB), where O_APPEND alone
// promises nothing about interleaving.
var payload = strings.Repeat("x", 5000)

// writeMany appends count events from each of n goroutines, as writer
// "<prefix>-<goroutine>" with seq 0..count-1.
func writeMany(path, prefix string, n, count int, maxSize int64) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range n {
		wg.Go(func() {
			for i := range count {
				m := New(ContainerEventType, "start", fmt.Sprintf("%s-%d", prefix, g),
					map[string]string{"seq": strconv.Itoa(i), "payload": payload})
				if err := appendMax(path, m, maxSize); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func helperAppend(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 5 {
		return fmt.Errorf("bad spec %q", spec)
	}
	n, _ := strconv.Atoi(f[2])
	count, _ := strconv.Atoi(f[3])
	maxSize, _ := strconv.ParseInt(f[4], 10, 64)
	return writeMany(f[0], f[1], n, count, maxSize)
}

// checkLines reads every line of the files and requires each to be a whole
// event, every writer's seqs to run 0..count-1 in order, and want writers.
func checkLines(t *testing.T, want, count int, files ...string) {
	t.Helper()
	next := map[string]int{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m Message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: torn line %.80q…: %v", name, sc.Text(), err)
			}
			seq, _ := strconv.Atoi(m.Actor.Attributes["seq"])
			if seq != next[m.Actor.ID] || m.Actor.Attributes["payload"] != payload {
				t.Fatalf("%s: writer %s: seq %d, want %d (or a damaged payload)", name, m.Actor.ID, seq, next[m.Actor.ID])
			}
			next[m.Actor.ID]++
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(next) != want {
		t.Errorf("%d writers in the log, want %d", len(next), want)
	}
	for w, n := range next {
		if n != count {
			t.Errorf("writer %s: %d events, want %d", w, n, count)
		}
	}
}

// waitAll waits for every appender before failing on any.
func waitAll(t *testing.T, cmds []*exec.Cmd) {
	t.Helper()
	failed := false
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("appender: %v", err)
			failed = true
		}
	}
	if failed {
		t.FailNow()
	}
}

func TestAppendGoroutines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	if err := writeMany(path, "g", 20, 30, MaxSize); err != nil {
		t.Fatal(err)
	}
	checkLines(t, 20, 30, path)
	if _, err := os.Stat(path + ".1"); err == nil {
		t.Error("rotated below MaxSize")
	}
}

func TestAppendProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	var cmds []*exec.Cmd
	for p := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s p%d 5 30 %d", helperEnv, path, p, MaxSize))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	waitAll(t, cmds)
	checkLines(t, 20, 30, path)
}

// TestAppendRotates: with writers in several processes rotating at a small
// size, nothing is torn and what is left is the newest events, contiguous.
func TestAppendRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	const maxSize = 64 << 10
	var cmds []*exec.Cmd
	for p := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s p%d 2 100 %d", helperEnv, path, p, maxSize))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	waitAll(t, cmds)
	for _, name := range []string{path, path + ".1"} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > maxSize+int64(len(payload))+1024 {
			t.Errorf("%s is %d bytes, rotation at %d", name, st.Size(), maxSize)
		}
	}
	// Each writer's events in .1 then the live file are a run of
	// consecutive seqs, and the last writer's run ends at its last event.
	last := map[string]int{}
	var n int
	err := Read(context.Background(), path, ReadOptions{}, func(m Message) error {
		seq, _ := strconv.Atoi(m.Actor.Attributes["seq"])
		if prev, ok := last[m.Actor.ID]; ok && seq != prev+1 {
			t.Errorf("writer %s: seq %d after %d", m.Actor.ID, seq, prev)
		}
		if m.Actor.Attributes["payload"] != payload {
			t.Errorf("writer %s seq %d: damaged payload", m.Actor.ID, seq)
		}
		last[m.Actor.ID] = seq
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	finished := false
	for _, seq := range last {
		finished = finished || seq == 99
	}
	if !finished || n < maxSize/len(payload) {
		t.Errorf("read %d events, last seqs %v: want a writer's seq 99 and at least a file's worth", n, last)
	}
}

func TestAppendStampsAndOrders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	before := time.Now()
	for range 50 {
		if err := Append(path, New(ImageEventType, "pull", "busybox:latest", nil)); err != nil {
			t.Fatal(err)
		}
	}
	var prev int64
	err := Read(context.Background(), path, ReadOptions{}, func(m Message) error {
		if m.TimeNano < before.UnixNano() || m.TimeNano < prev || m.Time != m.TimeNano/1e9 {
			t.Errorf("time %d/%d after %d (start %d)", m.Time, m.TimeNano, prev, before.UnixNano())
		}
		if m.Status != "pull" || m.ID != "busybox:latest" || m.Scope != "local" || m.Actor.Attributes == nil {
			t.Errorf("legacy fields: %+v", m)
		}
		prev = m.TimeNano
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if prev == 0 {
		t.Fatal("nothing read")
	}
}

// TestAppendAfterTornLine: a line a dead writer left unfinished stays one
// bad line that readers skip, and the next event is whole.
func TestAppendAfterTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	if err := Append(path, New(ContainerEventType, "create", "a", nil)); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"Type":"container","Action":"sta`)
	f.Close()
	if err := Append(path, New(ContainerEventType, "start", "a", nil)); err != nil {
		t.Fatal(err)
	}
	var got []string
	Read(context.Background(), path, ReadOptions{}, func(m Message) error {
		got = append(got, m.Action)
		return nil
	})
	if strings.Join(got, ",") != "create,start" {
		t.Errorf("read %q, want create,start", got)
	}
}

func TestAppendErrors(t *testing.T) {
	dir := t.TempDir()
	err := Append(filepath.Join(dir, "missing", "events.log"), New(ContainerEventType, "create", "a", nil))
	if !errdefs.IsNotFound(err) {
		t.Errorf("append in a missing directory: %v, want not found", err)
	}
	big := New(ContainerEventType, "create", "a", map[string]string{"l": strings.Repeat("y", maxLine)})
	path := filepath.Join(dir, "events.log")
	if err := Append(path, big); !errdefs.IsInvalidArgument(err) {
		t.Errorf("append of a %d-byte event: %v, want invalid argument", maxLine, err)
	}
	if st, err := os.Stat(path); err == nil && st.Size() != 0 {
		t.Errorf("refused event left %d bytes", st.Size())
	}
}
