package snapshottest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/snapshot"
	"golang.org/x/sys/unix"
)

// The suite re-executes the test binary, running only the current subtest,
// with these variables set; Suite then runs child instead of the test.
const (
	envRole  = "BERTH_SNAPSHOTTEST_ROLE"  // "work <n>" or "hold <duration>"
	envRoot  = "BERTH_SNAPSHOTTEST_ROOT"  // the shared snapshotter root
	envOut   = "BERTH_SNAPSHOTTEST_OUT"   // file the child reports to
	envStart = "BERTH_SNAPSHOTTEST_START" // unix nanoseconds: workers start together
)

const (
	workers = 4  // processes sharing the root
	steps   = 20 // operations each
)

// spawn re-executes the test binary as a child running t's subtest in role.
// The child reports to the returned file.
func spawn(t *testing.T, root, role string, extraEnv ...string) (*exec.Cmd, string) {
	t.Helper()
	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0], "-test.run", strings.Join(run, "/"), "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), append([]string{envRole + "=" + role, envRoot + "=" + root, envOut + "=" + out}, extraEnv...)...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("child %q output:\n%s", role, logs.String())
		}
	})
	return cmd, out
}

// child is the body of a re-executed test binary.
func child(t *testing.T, open New) {
	root, out := os.Getenv(envRoot), os.Getenv(envOut)
	role, arg, _ := strings.Cut(os.Getenv(envRole), " ")
	var report []string
	switch role {
	case "hold":
		// A berth process inside a long transaction: the metadata file's
		// exclusive flock, held for arg.
		d, err := time.ParseDuration(arg)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(filepath.Join(root, "metadata.db"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		if err := writeAtomic(out, strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(d)
		f.Close()
		return
	case "work":
		n, err := strconv.Atoi(arg)
		if err != nil {
			t.Fatal(err)
		}
		start, _ := strconv.ParseInt(os.Getenv(envStart), 10, 64)
		time.Sleep(time.Until(time.Unix(0, start)))
		report = work(t, root, open, n)
	default:
		t.Fatalf("unknown child role %q", role)
	}
	if err := writeAtomic(out, strings.Join(report, "\n")); err != nil {
		t.Fatal(err)
	}
}

// writeAtomic writes a child's report so that the parent never reads half.
func writeAtomic(path, body string) error {
	if err := os.WriteFile(path+".tmp", []byte(body), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// work is one worker process's share of testMultiProcess. Each step opens
// the snapshotter afresh, as each berth command does, so that its open-time
// cleanup runs while the other workers build, and then makes a layer of its
// own chain, races the other workers to commit the same name and to prepare
// the same key, and races removing a parent (even workers) against building
// a child on it (odd workers). It returns what it won.
func work(t *testing.T, root string, open New, n int) []string {
	ctx := context.Background()
	var won []string
	var s snapshot.Snapshotter
	commit := func(name, parent, file string) error {
		key := fmt.Sprintf("%s-act%d", name, n)
		if _, err := s.Prepare(ctx, key, parent); err != nil {
			return fmt.Errorf("Prepare(%s, %s): %w", key, parent, err)
		}
		dir, err := s.UpperDir(ctx, key)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, file), []byte(strconv.Itoa(n)), 0o644)
		}
		if err != nil {
			return err
		}
		if err := s.Commit(ctx, name, key); err != nil {
			if rerr := s.Remove(ctx, key); rerr != nil {
				t.Errorf("worker %d: Remove(%s) after losing: %v", n, key, rerr)
			}
			return err
		}
		return nil
	}
	for i := range steps {
		if s != nil {
			s.Close()
		}
		s = open(t, root)
		own, parent := fmt.Sprintf("w%d-%d", n, i), ""
		if i > 0 {
			parent = fmt.Sprintf("w%d-%d", n, i-1)
		}
		if err := commit(own, parent, own); err != nil {
			t.Errorf("worker %d: own layer: %v", n, err)
		}

		shared, parent := fmt.Sprintf("s-%d", i), ""
		if i > 0 {
			parent = fmt.Sprintf("s-%d", i-1)
		}
		switch err := commit(shared, parent, shared); {
		case err == nil:
			won = append(won, "commit "+shared)
		case !errdefs.IsAlreadyExists(err):
			t.Errorf("worker %d: shared layer: %v", n, err)
		}

		same := fmt.Sprintf("same-%d", i)
		switch _, err := s.Prepare(ctx, same, ""); {
		case err == nil:
			won = append(won, "prepare "+same)
		case !errdefs.IsAlreadyExists(err):
			t.Errorf("worker %d: Prepare(%s): %v", n, same, err)
		}

		r := fmt.Sprintf("r-%d", i)
		if n%2 == 0 {
			switch err := s.Remove(ctx, r); {
			case err == nil:
				won = append(won, "remove "+r)
			case !errdefs.IsFailedPrecondition(err) && !errdefs.IsNotFound(err):
				t.Errorf("worker %d: Remove(%s): %v", n, r, err)
			}
			continue
		}
		name := fmt.Sprintf("rchild-%d-%d", i, n)
		switch err := commit(name, r, name); {
		case err == nil:
			won = append(won, "child "+name)
		case !errdefs.IsNotFound(err) && !errdefs.IsConflict(err):
			t.Errorf("worker %d: child of %s: %v", n, r, err)
		}
	}
	return won
}

// testMultiProcess runs workers processes on one root at once and checks
// that they leave it consistent: every race has one winner, the losers left
// nothing behind, no child lost its parent, and every snapshot mounts.
func testMultiProcess(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root)
	for i := range steps {
		layer(t, s, fmt.Sprintf("r-%d", i), "", change{"r", strconv.Itoa(i)})
	}
	start := "BERTH_SNAPSHOTTEST_START=" + strconv.FormatInt(time.Now().Add(500*time.Millisecond).UnixNano(), 10)
	var cmds []*exec.Cmd
	var outs []string
	for n := range workers {
		cmd, out := spawn(t, root, "work "+strconv.Itoa(n), start)
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	wins := map[string]int{}
	for n, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("worker %d: %v", n, err)
			continue
		}
		b, err := os.ReadFile(outs[n])
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range strings.Split(string(b), "\n") {
			if w != "" {
				wins[w]++
			}
		}
	}
	if t.Failed() {
		return
	}
	kinds := map[string]int{}
	for w := range wins {
		kinds[strings.Fields(w)[0]]++
	}
	t.Logf("races won: %v", kinds)

	want := map[string]snapshot.Kind{}
	for i := range steps {
		for n := range workers {
			want[fmt.Sprintf("w%d-%d", n, i)] = snapshot.KindCommitted
		}
		for _, race := range []string{"commit s-%d", "prepare same-%d"} {
			if w := fmt.Sprintf(race, i); wins[w] != 1 {
				t.Errorf("%q won by %d workers, want exactly 1", w, wins[w])
			}
		}
		want[fmt.Sprintf("s-%d", i)] = snapshot.KindCommitted
		want[fmt.Sprintf("same-%d", i)] = snapshot.KindActive
		children := 0
		for n := 1; n < workers; n += 2 {
			if c := fmt.Sprintf("rchild-%d-%d", i, n); wins["child "+c] == 1 {
				want[c] = snapshot.KindCommitted
				children++
			}
		}
		removed := wins[fmt.Sprintf("remove r-%d", i)]
		switch {
		case removed > 1 || (removed == 1 && children > 0):
			t.Errorf("r-%d removed %d times, with %d children committed on it", i, removed, children)
		case removed == 0:
			want[fmt.Sprintf("r-%d", i)] = snapshot.KindCommitted
		}
	}

	got := map[string]snapshot.Info{}
	err := s.Walk(ctx, func(i snapshot.Info) error {
		if _, dup := got[i.Key]; dup {
			t.Errorf("Walk listed %s twice", i.Key)
		}
		got[i.Key] = i
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, kind := range want {
		if got[k].Kind != kind {
			t.Errorf("%s: kind %v, want %v", k, got[k].Kind, kind)
		}
	}
	for k, i := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("Walk lists %s (%v), which no worker reported", k, i.Kind)
		}
		if p, ok := got[i.Parent]; i.Parent != "" && (!ok || p.Kind != snapshot.KindCommitted) {
			t.Errorf("%s has parent %s, which is missing or not committed", k, i.Parent)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err != nil {
			t.Errorf("left in snapshots/: %s", e.Name())
		}
		names = append(names, e.Name())
	}
	if len(names) != len(got) {
		sort.Strings(names)
		t.Errorf("%d snapshot directories for %d snapshots: %v", len(names), len(got), names)
	}

	// Every committed snapshot mounts as a view, and a chain's top shows
	// every layer of it.
	for k, i := range got {
		if i.Kind != snapshot.KindCommitted {
			continue
		}
		tr := tree(t, mountsOK(t)(s.View(ctx, "check-"+k, k)))
		top := strings.HasSuffix(k, fmt.Sprintf("-%d", steps-1))
		if top && (strings.HasPrefix(k, "w") || strings.HasPrefix(k, "s-")) {
			if n := strings.Count(tr, "="); n != steps {
				t.Errorf("view of %s holds %d files, want %d: %s", k, n, steps, tr)
			}
		}
	}
}

// testLockWait holds the metadata file's lock in another process, as a
// process in a long transaction would. A call made meanwhile waits and
// succeeds once the lock is released; with a timeout shorter than the hold
// it fails with errdefs.ErrUnavailable naming the file, leaving nothing.
func testLockWait(t *testing.T, root string, open New) {
	ctx := context.Background()
	s := open(t, root, snapshot.WithTimeout(10*time.Second))
	layer(t, s, "base", "", change{"a", "1"})
	// The snapshotter is open but holds no lock: another process takes it.
	cmd, out := spawn(t, root, "hold 1s")
	locked := waitLocked(t, out)
	if _, err := s.Prepare(ctx, "waited", "base"); err != nil {
		t.Fatalf("Prepare while another process held the lock for 1s: %v", err)
	}
	if held := time.Since(locked); held < 900*time.Millisecond {
		t.Errorf("Prepare returned %v after the lock was taken, before it was released", held)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("holder: %v", err)
	}

	short := open(t, root, snapshot.WithTimeout(300*time.Millisecond))
	_, out = spawn(t, root, "hold 5s")
	locked = waitLocked(t, out)
	_, err := short.Prepare(ctx, "late", "base")
	if took := time.Since(locked); !errors.Is(err, errdefs.ErrUnavailable) || took > 4*time.Second {
		t.Errorf("Prepare against a 5s hold with a 300ms timeout: err = %v after %v, want ErrUnavailable", err, took)
	}
	if err != nil && !strings.Contains(err.Error(), filepath.Join(root, "metadata.db")) {
		t.Errorf("error does not name the metadata file: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "new-") {
			t.Errorf("failed Prepare left %s", e.Name())
		}
	}
}

// waitLocked waits for a "hold" child to report that it has the lock, and
// returns when it took it.
func waitLocked(t *testing.T, out string) time.Time {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(out)
		if err != nil || len(b) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			t.Fatalf("holder reported %q", b)
		}
		return time.Unix(0, ns)
	}
	t.Fatal("holder never took the lock")
	return time.Time{}
}
