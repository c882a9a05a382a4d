package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/berth-dev/berth/engine"
)

func TestProgressBar(t *testing.T) {
	for _, c := range []struct {
		cur, total int64
		want       string
	}{
		{0, 0, ""},
		{12_300_000, 0, "  12.3MB"},
		{0, 100, "[>" + strings.Repeat(" ", 49) + "]       0B/100B"},
		{12_300_000, 45_600_000, "[=============>" + strings.Repeat(" ", 36) + "]   12.3MB/45.6MB"},
		{100, 100, "[" + strings.Repeat("=", 50) + "]     100B/100B"},
	} {
		if got := progressBar(c.cur, c.total); got != c.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", c.cur, c.total, got, c.want)
		}
	}
}

// TestProgressTerminal feeds a pull's events to the terminal renderer and
// checks the escape sequences that redraw each layer's line in place, and
// the screen they leave.
func TestProgressTerminal(t *testing.T) {
	var buf, all bytes.Buffer
	w := newProgressWriter(io.MultiWriter(&buf, &all), true)
	w.Update(engine.Progress{ID: "aaa", Status: "Pulling fs layer"})
	w.Update(engine.Progress{ID: "bbb", Status: "Pulling fs layer"})
	if got := buf.String(); got != "aaa: Pulling fs layer\nbbb: Pulling fs layer\n" {
		t.Fatalf("new layers: %q", got)
	}
	buf.Reset()
	w.Update(engine.Progress{ID: "aaa", Status: "Downloading", Current: 50, Total: 100})
	want := "\x1b[2A\x1b[2K\raaa: Downloading [=========================>" + strings.Repeat(" ", 24) + "]      50B/100B\x1b[2B\r"
	if got := buf.String(); got != want {
		t.Errorf("redraw of the first line:\n got %q\nwant %q", got, want)
	}
	buf.Reset()
	w.Update(engine.Progress{ID: "bbb", Status: "Pull complete"})
	if got := buf.String(); got != "\x1b[1A\x1b[2K\rbbb: Pull complete\x1b[1B\r" {
		t.Errorf("redraw of the last line: %q", got)
	}
	w.Update(engine.Progress{ID: "aaa", Status: "Extracting", Current: 100, Total: 100})
	w.Update(engine.Progress{ID: "aaa", Status: "Pull complete"})
	w.Update(engine.Progress{ID: "ccc", Status: "Pushing", Current: 1, Total: 4})
	if got, want := renderScreen(all.String()), []string{
		"aaa: Pull complete", "bbb: Pull complete",
		"ccc: Pushing [============>" + strings.Repeat(" ", 37) + "]       1B/4B",
	}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestProgressPlain checks that without a terminal only changes of status
// print, as plain lines.
func TestProgressPlain(t *testing.T) {
	var buf bytes.Buffer
	w := newProgressWriter(&buf, false)
	for _, p := range []engine.Progress{
		{ID: "aaa", Status: "Pulling fs layer"},
		{ID: "aaa", Status: "Downloading", Total: 100},
		{ID: "aaa", Status: "Downloading", Current: 50, Total: 100},
		{ID: "aaa", Status: "Download complete", Current: 100, Total: 100},
		{ID: "aaa", Status: "Extracting", Current: 10, Total: 100},
		{ID: "aaa", Status: "Extracting", Current: 100, Total: 100},
		{ID: "aaa", Status: "Pull complete"},
	} {
		w.Update(p)
	}
	want := "aaa: Pulling fs layer\naaa: Downloading\naaa: Download complete\naaa: Extracting\naaa: Pull complete\n"
	if got := buf.String(); got != want {
		t.Errorf("plain output:\n%q\nwant\n%q", got, want)
	}
}

// renderScreen interprets the output of a terminal progressWriter (text,
// \n, \r, ESC[nA, ESC[nB, ESC[2K) and returns the lines on screen.
func renderScreen(s string) []string {
	var lines []string
	row, col := 0, 0
	line := func() *string {
		for len(lines) <= row {
			lines = append(lines, "")
		}
		return &lines[row]
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\n':
			row, col = row+1, 0
		case c == '\r':
			col = 0
		case c == 0x1b && i+1 < len(s) && s[i+1] == '[':
			j := i + 2
			n := 0
			for ; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
				n = n*10 + int(s[j]-'0')
			}
			switch s[j] {
			case 'A':
				row -= n
			case 'B':
				row += n
			case 'K':
				*line() = ""
			}
			i = j
		default:
			l := line()
			for len(*l) < col {
				*l += " "
			}
			*l = (*l)[:col] + string(c) + (*l)[min(col+1, len(*l)):]
			col++
		}
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
