package engine

import (
	"io"
	"time"
)

// progressInterval is the least time between two byte-count updates of one
// layer: about ten a second, as docker's progress bars redraw.
const progressInterval = 100 * time.Millisecond

// meter reports a byte count as Progress events, rate-limited. One
// goroutine uses a meter.
type meter struct {
	id, status     string
	current, total int64
	last           time.Time
	quiet          bool // count, but do not report
	fn             func(Progress)
}

func newMeter(id, status string, total int64, fn func(Progress)) *meter {
	return &meter{id: id, status: status, total: total, fn: fn}
}

// add counts n bytes and reports them if the last report is old enough.
func (m *meter) add(n int) {
	m.current += int64(n)
	if now := time.Now(); !m.quiet && now.Sub(m.last) >= progressInterval {
		m.last = now
		m.fn(Progress{ID: m.id, Status: m.status, Current: m.current, Total: m.total})
	}
}

// emit reports the count now.
func (m *meter) emit() {
	m.last = time.Now()
	m.fn(Progress{ID: m.id, Status: m.status, Current: m.current, Total: m.total})
}

// reader counts what is read from r.
func (m *meter) reader(r io.Reader) io.Reader { return meterReader{r, m} }

type meterReader struct {
	r io.Reader
	m *meter
}

func (r meterReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.m.add(n)
	return n, err
}
