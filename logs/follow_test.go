package logs

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// A test binary started with writerEnv set is a log writer in a process
// of its own, as the shim is: it writes "line From" … "line To-1".
const writerEnv = "BERTH_LOGS_TEST_WRITER"

type writerSpec struct {
	Path     string
	From, To int
	Opts     Options
	// Go makes the writer write its first line, say "ready" and wait
	// for a byte on stdin before it writes the rest.
	Go bool
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(writerEnv); spec != "" {
		os.Exit(writerMain(spec))
	}
	os.Exit(m.Run())
}

func writerMain(spec string) int {
	var s writerSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w, err := NewWriter(s.Path, s.Opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := s.From; i < s.To; i++ {
		if err := w.Write("stdout", fmt.Appendf(nil, "line %d\n", i), t0.Add(time.Duration(i)*time.Second)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if s.Go && i == s.From {
			fmt.Println("ready")
			if _, err := os.Stdin.Read(make([]byte, 1)); err != nil {
				return 1
			}
		}
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := w.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// writerProcess is a writer running in a child process.
type writerProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startWriter(t *testing.T, s writerSpec) *writerProcess {
	t.Helper()
	spec, _ := json.Marshal(s)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &writerProcess{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
}

// ready waits for the writer's first line to be in the log.
func (p *writerProcess) ready(t *testing.T) {
	t.Helper()
	if line, err := p.out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("writer: %q %v", line, err)
	}
}

func (p *writerProcess) goOn(t *testing.T) {
	t.Helper()
	if _, err := p.stdin.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
}

func (p *writerProcess) wait(t *testing.T) {
	t.Helper()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
}

// TestConcurrentRotationCrossProcess is TestConcurrentRotationLosesNothing
// with the writer in another process, as the shim and `berth logs -f` are.
func TestConcurrentRotationCrossProcess(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", gz), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.log")
			const n = 3000
			p := startWriter(t, writerSpec{Path: path, To: n, Opts: Options{MaxSize: 2000, MaxFile: 100, Compress: gz}, Go: true})
			p.ready(t)
			f := follow(path, ReadOptions{Tail: -1})
			defer f.stop()
			f.waitFor(t, 1)
			p.goOn(t)
			errs := make(chan error, 100)
			var wg sync.WaitGroup
			wg.Go(func() { oneShotReaders(path, 50, errs) })
			p.wait(t)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			got := f.waitFor(t, n)
			f.stop()
			if err := <-f.done; err != nil {
				t.Fatal(err)
			}
			checkLines(t, got, 0, n)
		})
	}
}

// TestFollowWriterExits: the container exits, so its shim and the log's
// writer with it. The follower has read everything, keeps following (a
// restarted container's new shim appends to the same log) and ends when
// its context is cancelled, at once.
func TestFollowWriterExits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	opts := Options{MaxSize: 2000, MaxFile: 5, Compress: true}
	p := startWriter(t, writerSpec{Path: path, To: 300, Opts: opts, Go: true})
	p.ready(t)
	f := follow(path, ReadOptions{Tail: -1})
	defer f.stop()
	f.waitFor(t, 1)
	p.goOn(t)
	p.wait(t)
	checkLines(t, f.waitFor(t, 300), 0, 300)

	select {
	case err := <-f.done:
		t.Fatalf("follow ended on its own when the writer exited: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	// The container restarts: a new writer process appends and rotates.
	startWriter(t, writerSpec{Path: path, From: 300, To: 600, Opts: opts}).wait(t)
	checkLines(t, f.waitFor(t, 600), 0, 600)

	start := time.Now()
	f.stop()
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("follow ended with %v", err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("follow took %v to end after cancel", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after cancel")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	checkLines(t, f.got, 0, 600)
}

// TestFollowFallsBehind: a follower that stalls (a slow terminal) while the
// writer rotates its file out of the log loses the files it missed, as
// Docker's does, but neither stops nor repeats nor reorders: it goes on
// from the oldest file left to the end.
func TestFollowFallsBehind(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", gz), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.log")
			w, err := NewWriter(path, Options{MaxSize: 1000, MaxFile: 3, Compress: gz})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			writeN(t, w, 0, 1, "stdout")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fds := openFDs(t)
			stalled, release := make(chan struct{}), make(chan struct{})
			var mu sync.Mutex
			var got []int
			done := make(chan error, 1)
			go func() {
				done <- Read(ctx, path, ReadOptions{Tail: -1, Follow: true}, func(e Entry) error {
					var i int
					fmt.Sscanf(string(e.Line), "line %d\n", &i)
					if i == 0 {
						close(stalled)
						<-release
					}
					mu.Lock()
					got = append(got, i)
					mu.Unlock()
					return nil
				})
			}()
			<-stalled
			const n = 1000 // ≈70 rotations
			writeN(t, w, 1, n, "stdout")
			close(release)
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				last := -1
				if len(got) > 0 {
					last = got[len(got)-1]
				}
				mu.Unlock()
				if last == n-1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("follower stuck at line %d", last)
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := openFDs(t); n != fds {
				t.Errorf("%d open files after the follow, %d before", n, fds)
			}
			// One gap, where the follower's file was dropped; what it
			// reads after is the oldest file left and all after it.
			gaps := 0
			for i := 1; i < len(got); i++ {
				switch {
				case got[i] <= got[i-1]:
					t.Fatalf("line %d after line %d", got[i], got[i-1])
				case got[i] != got[i-1]+1:
					gaps++
				}
			}
			if gaps != 1 || len(got) > 100 {
				t.Errorf("%d gaps, %d of %d lines read", gaps, len(got), n)
			}
		})
	}
}

// TestFollowWakesOnWrite: a follower sees a new record in well under the
// poll interval, woken by inotify.
func TestFollowWakesOnWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := NewWriter(path, Options{MaxSize: 500, MaxFile: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f := follow(path, ReadOptions{Tail: 0})
	defer f.stop()
	time.Sleep(50 * time.Millisecond)
	var lags []time.Duration
	for i := range 20 { // rotates about every sixth record
		start := time.Now()
		writeN(t, w, i, i+1, "stdout")
		if got := f.waitFor(t, i+1); len(got) != i+1 {
			t.Fatalf("got %d records", len(got))
		}
		lags = append(lags, time.Since(start))
		time.Sleep(time.Duration(i%7) * 3 * time.Millisecond)
	}
	slices.Sort(lags)
	if lags[len(lags)/2] > 25*time.Millisecond {
		t.Errorf("median lag %v (all: %v)", lags[len(lags)/2], lags)
	}
	checkLines(t, f.waitFor(t, 20), 0, 20)
}

// TestFollowPolls: without inotify (out of instances) a follower polls.
func TestFollowPolls(t *testing.T) {
	inotifyOff = true
	defer func() { inotifyOff = false }()
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := NewWriter(path, Options{MaxSize: 400, MaxFile: 4, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	writeN(t, w, 0, 1, "stdout")
	f := follow(path, ReadOptions{Tail: -1})
	defer f.stop()
	f.waitFor(t, 1)
	for i := 1; i < 40; i += 3 {
		writeN(t, w, i, i+3, "stdout")
		time.Sleep(30 * time.Millisecond)
	}
	checkLines(t, f.waitFor(t, 40), 0, 40)
}

// TestGzipHeader: a compressed file says, as Docker's do, when its last
// record was written, and which plain file it was made from.
func TestGzipHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := NewWriter(path, Options{MaxSize: 1000, MaxFile: 2, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, w, 0, 15, "stdout") // fills the live file
	w.mu.Lock()
	st, _ := w.f.Stat()
	w.mu.Unlock()
	writeN(t, w, 15, 16, "stdout") // rotates it
	w.Close()
	gz, err := os.Open(path + ".1.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	// moby's rotateFileMetadata
	var docker struct {
		LastTime time.Time `json:"lastTime,omitempty"`
	}
	if err := json.Unmarshal(zr.Extra, &docker); err != nil || !docker.LastTime.Equal(t0.Add(14*time.Second)) {
		t.Errorf("lastTime %v %v in %s", docker.LastTime, err, zr.Extra)
	}
	var meta gzipMeta
	json.Unmarshal(zr.Extra, &meta)
	if meta.Source == nil || *meta.Source != (source{ID: idOf(st), Size: st.Size()}) {
		t.Errorf("source %+v, want %v %d", meta.Source, idOf(st), st.Size())
	}
	if got := readAll(t, path, ReadOptions{Tail: -1}); len(got) != 16 {
		t.Errorf("read %d records", len(got))
	}
}

// TestRotationEveryRecord: the writer rotates before every record, as
// fast as it can, and keeps 10 files. Followers and one-shot readers fall
// behind and lose records, but each must see them in order, never twice,
// and the followers must reach the last one.
func TestRotationEveryRecord(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", gz), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.log")
			w, err := NewWriter(path, Options{MaxSize: 1, MaxFile: 10, Compress: gz})
			if err != nil {
				t.Fatal(err)
			}
			writeN(t, w, 0, 1, "stdout")
			const n = 2000
			type seen struct {
				mu   sync.Mutex
				last int
				err  error
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			check := func(s *seen) func(Entry) error {
				return func(e Entry) error {
					var i int
					fmt.Sscanf(string(e.Line), "line %d\n", &i)
					s.mu.Lock()
					defer s.mu.Unlock()
					if i <= s.last && s.err == nil {
						s.err = fmt.Errorf("line %d after line %d", i, s.last)
					}
					s.last = i
					return nil
				}
			}
			followers := make([]*seen, 3)
			var wg sync.WaitGroup
			for k := range followers {
				s := &seen{last: -1}
				followers[k] = s
				wg.Go(func() {
					if err := Read(ctx, path, ReadOptions{Tail: -1, Follow: true}, check(s)); err != nil {
						s.mu.Lock()
						s.err = err
						s.mu.Unlock()
					}
				})
			}
			writeErr := make(chan error, 1)
			go func() {
				for i := 1; i < n; i++ {
					if err := w.Write("stdout", fmt.Appendf(nil, "line %d\n", i), t0); err != nil {
						writeErr <- err
						return
					}
				}
				writeErr <- w.Close()
			}()
			for range 20 {
				s := &seen{last: -1}
				if err := Read(ctx, path, ReadOptions{Tail: -1}, check(s)); err != nil || s.err != nil {
					t.Errorf("one-shot read: %v %v", err, s.err)
				}
			}
			if err := <-writeErr; err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for k, s := range followers {
				for {
					s.mu.Lock()
					last, err := s.last, s.err
					s.mu.Unlock()
					if err != nil {
						t.Fatalf("follower %d: %v", k, err)
					}
					if last == n-1 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("follower %d stuck at line %d", k, last)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			cancel()
			wg.Wait()
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
