package logs

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestNext builds logs as a follower may find them after the file it
// reads (cur) was rotated away, and checks which file it goes on with.
func TestNext(t *testing.T) {
	// put writes a plain file holding one record, "name\n".
	put := func(t *testing.T, file, name string) {
		t.Helper()
		b, _ := appendRecord(nil, "stdout", []byte(name+"\n"), t0)
		if err := os.WriteFile(file, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	mv := func(t *testing.T, from, to string) {
		t.Helper()
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	gz := func(t *testing.T, from, to string) {
		t.Helper()
		if err := compress(from, to, t0); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		// build makes the log around cur, which is in path when called.
		build func(t *testing.T, path string, cur *logFile)
		want  string // first record of the next file; "" none, "cur" cur
	}{
		{"still live", func(t *testing.T, path string, cur *logFile) {}, "cur"},
		{"mid-rotation", func(t *testing.T, path string, cur *logFile) {
			mv(t, path, path+".1")
		}, ""},
		{"rotated twice", func(t *testing.T, path string, cur *logFile) {
			mv(t, path, path+".2")
			put(t, path+".1", "a")
			put(t, path, "live")
		}, "a"},
		{"gap mid-shift", func(t *testing.T, path string, cur *logFile) {
			mv(t, path, path+".3")
			put(t, path+".1", "a")
			put(t, path, "live")
		}, "a"},
		{"compressed", func(t *testing.T, path string, cur *logFile) {
			mv(t, path, path+".1")
			gz(t, path+".1", path+".1.gz")
			mv(t, path+".1.gz", path+".2.gz")
			put(t, path+".1", "a")
			gz(t, path+".1", path+".1.gz")
			put(t, path, "live")
		}, "a"},
		{"being compressed", func(t *testing.T, path string, cur *logFile) {
			mv(t, path, path+".1")
			put(t, path, "live")
			f, _ := os.Create(path + ".1.gz")
			f.Close()
		}, "live"},
		{"dropped", func(t *testing.T, path string, cur *logFile) {
			os.Remove(path)
			put(t, path+".2", "b")
			gz(t, path+".2", path+".2.gz")
			put(t, path+".1", "c")
			put(t, path, "live")
		}, "b"},
		{"older gzip from cur's inode number", func(t *testing.T, path string, cur *logFile) {
			// .3.gz claims cur as its source, as the gzip of a file
			// that had cur's inode number before cur would.
			meta, _ := json.Marshal(gzipMeta{Source: &source{ID: cur.id, Size: cur.size}})
			f, _ := os.Create(path + ".3.gz")
			zw := gzip.NewWriter(f)
			zw.Extra = meta
			b, _ := appendRecord(nil, "stdout", []byte("older\n"), t0)
			zw.Write(b)
			zw.Close()
			f.Close()
			put(t, path+".2", "x")
			mv(t, path, path+".1")
			gz(t, path+".1", path+".1.gz")
			put(t, path, "live")
		}, "live"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.log")
			put(t, path, "cur")
			cur, err := openLog(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer cur.close()
			c.build(t, path, cur)
			nf, err := newLogDir(path).next(context.Background(), cur)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			switch {
			case nf == cur:
				got = "cur"
			case nf != nil:
				defer nf.close()
				line, err := nf.next()
				if e, ok := decodeRecord(line); err == nil && ok {
					got = string(e.Line[:len(e.Line)-1])
				} else {
					got = fmt.Sprintf("unreadable (%v)", err)
				}
			}
			if got != c.want {
				t.Errorf("next file starts with %q, want %q", got, c.want)
			}
		})
	}
}
