package logs

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Expected bytes follow moby's jsonlog (ffjsonWriteJSONBytesAsString,
// fastTimeMarshalJSON with RFC3339Nano): <>& and tab are \u00XX escapes.
func TestFormat(t *testing.T) {
	cases := []struct {
		log  string
		t    time.Time
		want string
	}{
		{"hello\n", t0, `{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}`},
		{"x", t0.Add(123456789), `{"log":"x","stream":"stdout","time":"2024-01-01T00:00:00.123456789Z"}`},
		{"x", t0.Add(120 * time.Millisecond), `{"log":"x","stream":"stdout","time":"2024-01-01T00:00:00.12Z"}`},
		{`say "hi" \ there` + "\r\n", t0, `{"log":"say \"hi\" \\ there\r\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}`},
		{"<a href=\"x\">&amp;</a>", t0, `{"log":"\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e","stream":"stdout","time":"2024-01-01T00:00:00Z"}`},
		{"tab\tbell\x07nul\x00esc\x1b", t0, `{"log":"tab\u0009bell\u0007nul\u0000esc\u001b","stream":"stdout","time":"2024-01-01T00:00:00Z"}`},
		{"héllo 世界 🚀", t0, `{"log":"héllo 世界 🚀","stream":"stdout","time":"2024-01-01T00:00:00Z"}`},
		{"bad\xff\xfeutf8", t0, `{"log":"bad\ufffd\ufffdutf8","stream":"stdout","time":"2024-01-01T00:00:00Z"}`},
		{"ls\u2028ps\u2029", t0, `{"log":"ls\u2028ps\u2029","stream":"stdout","time":"2024-01-01T00:00:00Z"}`},
		{"\x7f", t0.In(time.FixedZone("X", 3600)), `{"log":"` + "\x7f" + `","stream":"stdout","time":"2024-01-01T00:00:00Z"}`},
	}
	for _, c := range cases {
		got, err := appendRecord(nil, "stdout", []byte(c.log), c.t)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want+"\n" {
			t.Errorf("%q:\n got %s\nwant %s", c.log, got, c.want)
		}
		e, ok := decodeRecord(got[:len(got)-1])
		if !ok || string(e.Line) != strings.ToValidUTF8(c.log, "\ufffd\ufffd") && !strings.Contains(c.log, "\xff") {
			t.Errorf("%q: round trip %q %v", c.log, e.Line, ok)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(map[string]string{"max-size": "10m", "max-file": "5", "compress": "true"})
	if err != nil || o != (Options{MaxSize: 10 << 20, MaxFile: 5, Compress: true}) {
		t.Fatalf("got %+v %v", o, err)
	}
	for in, want := range map[string]int64{"1k": 1024, "2M": 2 << 20, "1g": 1 << 30, "100": 100, "1.5kb": 1536, "3MiB": 3 << 20} {
		o, err := ParseOptions(map[string]string{"max-size": in})
		if err != nil || o.MaxSize != want {
			t.Errorf("%s: %d %v", in, o.MaxSize, err)
		}
	}
	if o, _ := ParseOptions(nil); o != (Options{MaxSize: DefaultMaxSize, MaxFile: DefaultMaxFile}) {
		t.Errorf("defaults %+v", o)
	}
	bad := map[string]string{
		"max-size=abc":             "invalid value for log option max-size",
		"max-size=0":               "max-size must be a positive number",
		"max-file=0":               "max-file cannot be less than 1",
		"max-file=x":               "invalid value for log option max-file",
		"compress=maybe":           "error reading compress log option",
		"colour=red":               "unknown log opt 'colour' for json-file log driver",
		"compress=true,max-file=1": "compress cannot be true when max-file is less than 2",
	}
	for in, want := range bad {
		m := map[string]string{}
		for _, kv := range strings.Split(in, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		_, err := ParseOptions(m)
		if err == nil || !strings.Contains(err.Error(), want) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func readAll(t *testing.T, path string, opts ReadOptions) []Entry {
	t.Helper()
	var got []Entry
	if err := Read(context.Background(), path, opts, func(e Entry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func lines(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		b.Write(e.Line)
	}
	return b.String()
}

func TestWriteSplitsAsDocker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := NewWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", maxChunk) + strings.Repeat("b", 10) + "\n"
	if err := w.Write("stdout", []byte("one\ntwo\n"+long+"tail"), t0); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("stdin", []byte("x"), t0); !errdefs.IsInvalidArgument(err) {
		t.Errorf("stdin: %v", err)
	}
	w.Close()
	got := readAll(t, path, ReadOptions{Tail: -1})
	want := []string{"one\n", "two\n", strings.Repeat("a", maxChunk), "bbbbbbbbbb\n", "tail"}
	if len(got) != len(want) {
		t.Fatalf("got %d records", len(got))
	}
	for i := range want {
		if string(got[i].Line) != want[i] {
			t.Errorf("record %d: %.20q", i, got[i].Line)
		}
	}
}

func writeN(t testing.TB, w *Writer, from, to int, stream string) {
	for i := from; i < to; i++ {
		if err := w.Write(stream, fmt.Appendf(nil, "line %d\n", i), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRotation(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", gz), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "container-json.log")
			w, err := NewWriter(path, Options{MaxSize: 1000, MaxFile: 3, Compress: gz})
			if err != nil {
				t.Fatal(err)
			}
			writeN(t, w, 0, 200, "stdout")
			w.Close()
			ents, _ := os.ReadDir(dir)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			want := "container-json.log container-json.log.1 container-json.log.2"
			if gz {
				want = "container-json.log container-json.log.1.gz container-json.log.2.gz"
			}
			if strings.Join(names, " ") != want {
				t.Fatalf("files %v", names)
			}
			for _, n := range names[1:] {
				b, _ := os.ReadFile(filepath.Join(dir, n))
				if gz {
					zr, err := gzip.NewReader(bytes.NewReader(b))
					if err != nil {
						t.Fatal(err)
					}
					b, _ = io.ReadAll(zr)
				}
				if len(b) < 1000 || len(b) > 1100 {
					t.Errorf("%s: %d bytes", n, len(b))
				}
			}
			got := readAll(t, path, ReadOptions{Tail: -1})
			first := 200 - len(got)
			for i, e := range got {
				if string(e.Line) != fmt.Sprintf("line %d\n", first+i) {
					t.Fatalf("record %d = %q", i, e.Line)
				}
			}
			if len(got) < 20 {
				t.Fatalf("only %d records kept", len(got))
			}
			// Tail across rotation.
			for _, n := range []int{0, 1, 5, len(got) - 1, len(got), len(got) + 10} {
				tl := readAll(t, path, ReadOptions{Tail: n})
				if len(tl) != min(n, len(got)) || (n > 0 && string(tl[len(tl)-1].Line) != "line 199\n") {
					t.Errorf("tail %d: %d records", n, len(tl))
				}
				if len(tl) > 0 && string(tl[0].Line) != string(got[len(got)-len(tl)].Line) {
					t.Errorf("tail %d starts at %q", n, tl[0].Line)
				}
			}
		})
	}
}

func TestFilters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, _ := NewWriter(path, Options{MaxSize: 500})
	writeN(t, w, 0, 10, "stdout")
	writeN(t, w, 10, 20, "stderr")
	w.Close()
	if got := readAll(t, path, ReadOptions{Tail: -1, Stderr: true}); len(got) != 10 || got[0].Stream != "stderr" {
		t.Errorf("stderr: %d", len(got))
	}
	if got := readAll(t, path, ReadOptions{Tail: -1, Stdout: true}); len(got) != 10 || got[9].Stream != "stdout" {
		t.Errorf("stdout: %d", len(got))
	}
	got := readAll(t, path, ReadOptions{Tail: -1, Since: t0.Add(5 * time.Second), Until: t0.Add(14 * time.Second)})
	if lines(got) != "line 5\nline 6\nline 7\nline 8\nline 9\nline 10\nline 11\nline 12\nline 13\nline 14\n" {
		t.Errorf("since/until: %q", lines(got))
	}
	if !got[0].Time.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("time %v", got[0].Time)
	}
	err := Read(context.Background(), path+"x", ReadOptions{}, func(Entry) error { return nil })
	if !errdefs.IsNotFound(err) {
		t.Errorf("missing log: %v", err)
	}
	stop := errors.New("stop")
	if err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(Entry) error { return stop }); err != stop {
		t.Errorf("fn error: %v", err)
	}
}

func TestCorruptLinesSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	good, _ := appendRecord(nil, "stdout", []byte("ok\n"), t0)
	data := "garbage\n" + string(good) + "{\"log\":\"x\"}\n" + strings.Repeat("z", 3<<20) + "\n" + string(good) + `{"log":"torn`
	os.WriteFile(path, []byte(data), 0o600)
	if got := readAll(t, path, ReadOptions{Tail: -1}); lines(got) != "ok\nok\n" {
		t.Errorf("got %q", lines(got))
	}
	// A writer reopening a torn log starts on a new line.
	w, _ := NewWriter(path, Options{})
	w.Write("stdout", []byte("after\n"), t0)
	w.Close()
	if got := readAll(t, path, ReadOptions{Tail: 1}); lines(got) != "after\n" {
		t.Errorf("after reopen %q", lines(got))
	}
}

// follower collects entries from a following Read in the background.
type follower struct {
	mu   sync.Mutex
	got  []Entry
	done chan error
	stop context.CancelFunc
}

func follow(path string, opts ReadOptions) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{done: make(chan error, 1), stop: cancel}
	opts.Follow = true
	go func() {
		f.done <- Read(ctx, path, opts, func(e Entry) error {
			f.mu.Lock()
			f.got = append(f.got, e)
			f.mu.Unlock()
			return nil
		})
	}()
	return f
}

func (f *follower) waitFor(t *testing.T, n int) []Entry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		got := append([]Entry(nil), f.got...)
		f.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, _ := NewWriter(path, Options{MaxSize: 400, MaxFile: 5})
	writeN(t, w, 0, 3, "stdout")
	f := follow(path, ReadOptions{Tail: 1})
	time.Sleep(300 * time.Millisecond)
	writeN(t, w, 3, 30, "stdout") // rotates several times
	got := f.waitFor(t, 28)
	f.stop()
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 2; i < 30; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if lines(got) != want.String() {
		t.Errorf("got %q", lines(got))
	}
	w.Close()
}

// TestConcurrentRotationLosesNothing follows a log that rotates every few
// ms (≈100 rotations of 2000 bytes) while one-shot readers read it: the
// follower must see every record once, in order, and each one-shot reader
// a run of consecutive records. Run it with -count=200.
func TestConcurrentRotationLosesNothing(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", gz), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.log")
			w, err := NewWriter(path, Options{MaxSize: 2000, MaxFile: 100, Compress: gz})
			if err != nil {
				t.Fatal(err)
			}
			const n = 3000
			writeN(t, w, 0, 1, "stdout")
			f := follow(path, ReadOptions{Tail: -1})
			defer f.stop()
			f.waitFor(t, 1) // following before the storm
			errs := make(chan error, 100)
			var wg sync.WaitGroup
			wg.Go(func() {
				defer w.Close()
				for i := 1; i < n; i++ {
					if err := w.Write("stdout", fmt.Appendf(nil, "line %d\n", i), t0.Add(time.Duration(i)*time.Second)); err != nil {
						errs <- err
						return
					}
					if i%100 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			})
			wg.Go(func() { oneShotReaders(path, 50, errs) })
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

// oneShotReaders reads the log count times; each read must succeed and
// yield consecutive records.
func oneShotReaders(path string, count int, errs chan<- error) {
	for range count {
		next := -1
		err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(e Entry) error {
			var i int
			if _, err := fmt.Sscanf(string(e.Line), "line %d\n", &i); err != nil {
				return fmt.Errorf("record %q", e.Line)
			}
			if next >= 0 && i != next {
				return fmt.Errorf("one-shot read: line %d after line %d", i, next-1)
			}
			next = i + 1
			return nil
		})
		if err != nil {
			errs <- err
		}
	}
}

// checkLines checks that got is exactly "line from\n" … "line to-1\n".
func checkLines(t *testing.T, got []Entry, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Errorf("got %d records, want %d", len(got), to-from)
	}
	for i, e := range got {
		if string(e.Line) != fmt.Sprintf("line %d\n", from+i) {
			t.Fatalf("record %d = %q, want line %d", i, e.Line, from+i)
		}
	}
}

func FuzzRead(f *testing.F) {
	good, _ := appendRecord(nil, "stderr", []byte("hi\n"), t0)
	f.Add(good, 2)
	f.Add([]byte("{\"log\":\n\x00\xff"), -1)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, data []byte, tail int) {
		dir := t.TempDir()
		path := filepath.Join(dir, "c.log")
		os.WriteFile(path, data, 0o600)
		os.WriteFile(path+".1", data, 0o600)
		os.WriteFile(path+".2.gz", data, 0o600)
		Read(context.Background(), path, ReadOptions{Tail: tail % 10}, func(Entry) error { return nil })
	})
}

func BenchmarkWrite(b *testing.B) {
	for _, size := range []int{80, 4096} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			w, err := NewWriter(filepath.Join(b.TempDir(), "c.log"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			line := append(bytes.Repeat([]byte("x<\"é"), size/5), '\n')
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Write("stdout", line, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
