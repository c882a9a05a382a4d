package linereader

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// drain reads r to its end and returns the lines it read, copied.
func drain(t testing.TB, r *Reader) []string {
	t.Helper()
	var got []string
	for {
		line, err := r.Next()
		if err == io.EOF {
			if line != nil {
				t.Fatalf("io.EOF with line %q", line)
			}
			return got
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		got = append(got, string(line))
	}
}

func check(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
		t.Errorf("%s: read %q, want %q", what, got, want)
	}
}

// growing is a file that the test appends to while a Reader reads it.
func growing(t *testing.T) (w *os.File, rd *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	rd, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return w, rd
}

func TestCompleteLines(t *testing.T) {
	r := New(strings.NewReader("one\n\ntwo\nthree\n"), 16, 100)
	check(t, "lines", drain(t, r), "one", "", "two", "three")
	if line, err := r.Next(); err != io.EOF || line != nil {
		t.Errorf("next after the end: %q, %v; want nil, io.EOF", line, err)
	}
}

func TestPartialLineCompletedByAppend(t *testing.T) {
	w, f := growing(t)
	r := New(f, 16, 100)
	w.WriteString("a\nbc")
	check(t, "before the append", drain(t, r), "a")
	w.WriteString("d")
	check(t, "line still partial", drain(t, r))
	// Longer than the buffer: the partial line spans several reads.
	long := strings.Repeat("x", 40)
	w.WriteString(long + "\ne\nf")
	check(t, "after the append", drain(t, r), "bcd"+long, "e")
	w.WriteString("\n")
	check(t, "last line ended", drain(t, r), "f")
}

func TestLongLineDropped(t *testing.T) {
	const max = 20
	for _, tc := range []struct {
		name   string
		pieces []string // appended one by one, each read to the end
		want   []string
	}{
		{"whole, within the buffer", []string{strings.Repeat("a", max+1) + "\nok\n"}, []string{"ok"}},
		{"whole, past the buffer", []string{strings.Repeat("a", 100) + "\nok\n"}, []string{"ok"}},
		{"exactly max, whole", []string{strings.Repeat("a", max) + "\nok\n"}, []string{strings.Repeat("a", max), "ok"}},
		{"exactly max, in pieces", []string{strings.Repeat("a", max-1), "a", "\nok\n"}, []string{strings.Repeat("a", max), "ok"}},
		{"one past max, in pieces", []string{strings.Repeat("a", max), "a", "\nok\n"}, []string{"ok"}},
		{"one past max, ended by the append", []string{strings.Repeat("a", max), "a\nok\n"}, []string{"ok"}},
		{"long, in many pieces", []string{"b", strings.Repeat("a", 30), strings.Repeat("a", 30), "\n", "ok", "\n"}, []string{"ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, f := growing(t)
			r := New(f, 16, max)
			var got []string
			for _, p := range tc.pieces {
				w.WriteString(p)
				got = append(got, drain(t, r)...)
			}
			check(t, "lines", got, tc.want...)
		})
	}
}

func TestConsumed(t *testing.T) {
	w, f := growing(t)
	r := New(f, 16, 4)
	// step appends more, reads to the end and checks the lines and N.
	step := func(more string, n int64, want ...string) {
		t.Helper()
		w.WriteString(more)
		check(t, "after "+strconv.Quote(more), drain(t, r), want...)
		if r.N != n {
			t.Errorf("after %q: N = %d, want %d", more, r.N, n)
		}
	}
	step("ab\ntoo long\ncd", 14, "ab") // the dropped and the partial line count
	step("\n", 15, "cd")
	// Reset starts over: counts from 0, without the partial line.
	w.WriteString("ef")
	if _, err := f.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	r.Reset(f)
	if r.N != 0 {
		t.Errorf("N = %d after Reset", r.N)
	}
	step("", 14, "cd") // from offset 3 of 17 bytes
	step("\n", 15, "ef")
}

func TestSourceError(t *testing.T) {
	bad := errors.New("bad disk")
	r := New(io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(bad)), 16, 10)
	if line, err := r.Next(); err != nil || string(line) != "a" {
		t.Fatalf("next: %q, %v", line, err)
	}
	if _, err := r.Next(); err != bad {
		t.Errorf("next: %v, want the source's error itself", err)
	}
}

func TestNoAllocations(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, 16, 100)
	// Warm up the buffers with a line longer than the bufio buffer.
	buf.WriteString(strings.Repeat("w", 50) + "\n")
	drain(t, r)
	// A complete line and one longer than the buffer, in two appends.
	first, second := "short\n"+strings.Repeat("y", 40), "\n"
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range []string{first, second} {
			buf.WriteString(p)
			for {
				if _, err := r.Next(); err != nil {
					break
				}
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations a run, want Next to make none", allocs)
	}
}

// FuzzNext appends data to a growing source in random pieces, reading to
// the end after each, and wants the lines a plain split finds.
func FuzzNext(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc"), []byte{1, 3}, uint8(2), uint8(0))
	f.Add([]byte(strings.Repeat("x", 50)+"\n"+strings.Repeat("y", 10)+"\n"), []byte{7, 30, 2}, uint8(10), uint8(0))
	f.Add([]byte(strings.Repeat("z", 16)+"\n"+strings.Repeat("z", 17)+"\n"), []byte{16, 1}, uint8(16), uint8(1))
	f.Fuzz(func(t *testing.T, data, cuts []byte, max, size uint8) {
		var src bytes.Buffer
		r := New(&src, 16+int(size%64), int(max))
		var got []string
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(n, int(cuts[i]))
			}
			src.Write(rest[:n])
			rest = rest[n:]
			got = append(got, drain(t, r)...)
			if r.N != int64(len(data)-len(rest)) {
				t.Fatalf("N = %d after %d bytes", r.N, len(data)-len(rest))
			}
		}
		var want []string
		lines := strings.Split(string(data), "\n")
		for _, l := range lines[:len(lines)-1] { // the last is not ended
			if len(l) <= int(max) {
				want = append(want, l)
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) {
			t.Fatalf("max %d: read %q, want %q", max, got, want)
		}
	})
}
