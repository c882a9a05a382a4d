package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/berth-dev/berth/engine"
	"github.com/docker/go-units"
)

// progressWriter renders the per-layer progress of pull and push as
// docker does. On a terminal each layer has one line, redrawn in place
// with ANSI cursor movement as its status and byte counts change
// ("<id>: Downloading [=====>     ]  12.3MB/45.6MB"). Elsewhere it prints
// one plain line per change of a layer's status ("<id>: Pull complete")
// and no byte counts. Safe for concurrent use.
type progressWriter struct {
	mu    sync.Mutex
	out   io.Writer
	tty   bool
	ids   []string          // layers in order of first appearance (tty)
	index map[string]int    // position of a layer's line in ids (tty)
	last  map[string]string // last status printed per layer (plain)
}

// newProgressWriter renders to out, drawing bars when tty is set.
func newProgressWriter(out io.Writer, tty bool) *progressWriter {
	return &progressWriter{out: out, tty: tty, index: map[string]int{}, last: map[string]string{}}
}

// isTTY reports whether w is a terminal (termios answers, unlike for
// /dev/null), as docker decides whether to draw progress bars.
func isTTY(w io.Writer) bool { return isTerminal(w) }

// Update renders one progress event.
func (w *progressWriter) Update(p engine.Progress) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.tty {
		if w.last[p.ID] == p.Status {
			return // a byte count: plain output shows steps only
		}
		w.last[p.ID] = p.Status
		fmt.Fprintf(w.out, "%s: %s\n", p.ID, p.Status)
		return
	}
	line := p.ID + ": " + p.Status
	if bar := progressBar(p.Current, p.Total); bar != "" {
		line += " " + bar
	}
	i, ok := w.index[p.ID]
	if !ok {
		w.index[p.ID] = len(w.ids)
		w.ids = append(w.ids, p.ID)
		fmt.Fprintf(w.out, "%s\n", line)
		return
	}
	// Up to the layer's line, clear it, write, and back down below the last.
	up := len(w.ids) - i
	fmt.Fprintf(w.out, "\x1b[%dA\x1b[2K\r%s\x1b[%dB\r", up, line, up)
}

// progressBar is docker's "[====>     ]  12.3MB/45.6MB" for a byte count,
// or just the count when the total is unknown.
func progressBar(current, total int64) string {
	if current <= 0 && total <= 0 {
		return ""
	}
	if total <= 0 {
		return fmt.Sprintf("%8v", units.HumanSize(float64(current)))
	}
	n := int(float64(current)/float64(total)*100) / 2
	n = max(0, min(n, 50))
	head := ">"
	if n == 50 {
		head = ""
	}
	box := "[" + strings.Repeat("=", n) + head + strings.Repeat(" ", 50-n-len(head)) + "]"
	return fmt.Sprintf("%s %8v/%v", box, units.HumanSize(float64(current)), units.HumanSize(float64(total)))
}
