package events

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// at is an event of container id at t0+sec seconds.
func at(t0 time.Time, sec int, id string) Message {
	m := New(ContainerEventType, "start", id, map[string]string{"name": "n-" + id})
	ts := t0.Add(time.Duration(sec) * time.Second)
	m.Time, m.TimeNano = ts.Unix(), ts.UnixNano()
	return m
}

// ids reads the log with o (not following) and returns the actor IDs.
func ids(t *testing.T, path string, o ReadOptions) string {
	t.Helper()
	var got []string
	if err := Read(context.Background(), path, o, func(m Message) error {
		got = append(got, m.Actor.ID)
		return nil
	}); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return strings.Join(got, ",")
}

func TestReadSinceUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range 10 {
		if err := Append(path, at(t0, i, strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	sec := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tt := range []struct {
		name string
		o    ReadOptions
		want string
	}{
		{"all", ReadOptions{}, "0,1,2,3,4,5,6,7,8,9"},
		{"since", ReadOptions{Since: sec(7)}, "7,8,9"},
		{"until", ReadOptions{Until: sec(2)}, "0,1,2"},
		{"both", ReadOptions{Since: sec(3), Until: sec(5)}, "3,4,5"},
		{"between", ReadOptions{Since: sec(3).Add(time.Millisecond), Until: sec(4).Add(-time.Millisecond)}, ""},
		{"until in the past, following", ReadOptions{Until: sec(1), Follow: true}, "0,1"},
		{"filtered", ReadOptions{Since: sec(2), Filter: mustFilter(t, "container=n-5", "container=8")}, "5,8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(t, path, tt.o); got != tt.want {
				t.Errorf("Read(%+v) = %q, want %q", tt.o, got, tt.want)
			}
		})
	}
	err := Read(context.Background(), path, ReadOptions{Since: sec(5), Until: sec(4)}, func(Message) error { return nil })
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "cannot be after `until` time") {
		t.Errorf("since after until: %v", err)
	}
	stop := errors.New("stop")
	n := 0
	err = Read(context.Background(), path, ReadOptions{}, func(Message) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("fn's error: Read = %v after %d calls, want it after 1", err, n)
	}
	if got := ids(t, filepath.Join(t.TempDir(), "events.log"), ReadOptions{}); got != "" {
		t.Errorf("missing log: %q", got)
	}
}

func mustFilter(t *testing.T, args ...string) Filter {
	t.Helper()
	f, err := ParseFilters(args)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReadSkipsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	t0 := time.Now()
	Append(path, at(t0, 0, "a"))
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("not json\n{}\n\n" + `{"Type":"container","Actor":{"ID":"` + strings.Repeat("z", maxLine) + "\"}}\n")
	f.Close()
	Append(path, at(t0, 1, "b"))
	if got := ids(t, path, ReadOptions{}); got != "a,b" {
		t.Errorf("read %.100q, want a,b", got)
	}
}

// follower runs a following Read and delivers its events and its end:
// done is closed when Read has returned err.
type follower struct {
	got    chan Message
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

func follow(t *testing.T, path string, o ReadOptions) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{got: make(chan Message, 10000), done: make(chan struct{}), cancel: cancel}
	o.Follow = true
	go func() {
		defer close(f.done)
		f.err = Read(ctx, path, o, func(m Message) error {
			f.got <- m
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

func (f *follower) next(t *testing.T, within time.Duration) Message {
	t.Helper()
	select {
	case m := <-f.got:
		return m
	case <-f.done:
		t.Fatalf("follow ended: %v", f.err)
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
	}
	return Message{}
}

// TestFollowFromNow: without Since or Until, a follower passes on what is
// appended after it starts, and nothing from before; it ends on cancel.
func TestFollowFromNow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	for i := range 5 {
		Append(path, New(ContainerEventType, "create", "old"+strconv.Itoa(i), nil))
	}
	f := follow(t, path, ReadOptions{})
	// Until the follower has started, markers may or may not reach it.
	deadline := time.Now().Add(5 * time.Second)
	for started := false; !started; {
		if time.Now().After(deadline) {
			t.Fatal("follower never saw a marker")
		}
		Append(path, New(ContainerEventType, "create", "marker", nil))
		select {
		case m := <-f.got:
			if m.Actor.ID != "marker" {
				t.Fatalf("follower passed on %q from before it started", m.Actor.ID)
			}
			started = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	Append(path, New(ContainerEventType, "start", "new", nil))
	for {
		if m := f.next(t, 5*time.Second); m.Actor.ID == "new" {
			break
		} else if m.Actor.ID != "marker" {
			t.Fatalf("got %q", m.Actor.ID)
		}
	}
	f.cancel()
	select {
	case <-f.done:
		if f.err != nil {
			t.Errorf("Read after cancel: %v", f.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Read did not end on cancel")
	}
}

// TestFollowIsWoken: a follower passes an append on well before its
// one-second rescan (inotify itself is TestWatcher's).
func TestFollowIsWoken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	f := follow(t, path, ReadOptions{Since: time.Now().Add(-time.Hour)})
	time.Sleep(100 * time.Millisecond) // let it start waiting
	for i := range 5 {
		start := time.Now()
		Append(path, New(ContainerEventType, "start", strconv.Itoa(i), nil))
		f.next(t, 5*time.Second)
		if d := time.Since(start); d > 700*time.Millisecond {
			t.Errorf("event %d arrived after %v", i, d)
		}
		time.Sleep(time.Duration(i*37%50) * time.Millisecond)
	}
}

// TestFollowUntil: a follower with Until in the future passes on events up
// to then and ends by itself.
func TestFollowUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	start := time.Now()
	until := start.Add(500 * time.Millisecond)
	Append(path, New(ContainerEventType, "create", "before", nil))
	f := follow(t, path, ReadOptions{Since: start.Add(-time.Second), Until: until})
	if m := f.next(t, 2*time.Second); m.Actor.ID != "before" {
		t.Fatalf("got %q", m.Actor.ID)
	}
	Append(path, New(ContainerEventType, "start", "during", nil))
	if m := f.next(t, 2*time.Second); m.Actor.ID != "during" {
		t.Fatalf("got %q", m.Actor.ID)
	}
	select {
	case <-f.done:
		if f.err != nil {
			t.Fatal(f.err)
		}
		if time.Now().Before(until) {
			t.Errorf("ended %v before until", time.Until(until))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("follow did not end at until")
	}
	Append(path, New(ContainerEventType, "die", "after", nil))
	select {
	case m := <-f.got:
		t.Errorf("got %q after the end", m.Actor.ID)
	default:
	}
}

// TestFollowWaitsForLog: following a log that does not exist yet passes on
// its first events.
func TestFollowWaitsForLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	f := follow(t, path, ReadOptions{})
	time.Sleep(50 * time.Millisecond)
	Append(path, New(VolumeEventType, "create", "v1", nil))
	if m := f.next(t, 5*time.Second); m.Actor.ID != "v1" {
		t.Fatalf("got %q", m.Actor.ID)
	}
}

// TestFollowAcrossRotations: a follower sees every event of a writer that
// rotates the log many times as it goes, once each and in order. The
// writer stays less than a file ahead of the follower: a follower more than
// a rotation behind loses files, by design (TestCatchUpAfterRotations
// drives the double rotation it still handles).
func TestFollowAcrossRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	const (
		maxSize = 64 << 10 // about 400 events a file
		lag     = 100      // events the writer may be ahead
		n       = 4000
	)
	Append(path, New(ContainerEventType, "create", "first", nil))
	f := follow(t, path, ReadOptions{Since: time.Now().Add(-time.Minute)})
	var delivered atomic.Int64
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for i := range n {
			for int64(i)-delivered.Load() > lag {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Microsecond):
				}
			}
			m := New(ContainerEventType, "start", strconv.Itoa(i), map[string]string{"pad": strings.Repeat("p", 100)})
			if err := appendMax(path, m, maxSize); err != nil {
				errc <- err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-errc
	}()
	if m := f.next(t, 5*time.Second); m.Actor.ID != "first" {
		t.Fatalf("first event %q", m.Actor.ID)
	}
	for i := range n {
		m := f.next(t, 10*time.Second)
		if m.Actor.ID != strconv.Itoa(i) {
			t.Fatalf("event %d: got %q", i, m.Actor.ID)
		}
		delivered.Store(int64(i))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatalf("the log never rotated: %v", err)
	}
}

// TestCatchUpAfterRotations drives a follower's catch-up by hand: events
// appended to its file before a rotation, then one or two rotations while
// it was not looking, are all passed on once, in order.
func TestCatchUpAfterRotations(t *testing.T) {
	for _, rotations := range []int{1, 2} {
		t.Run(strconv.Itoa(rotations), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.log")
			ctx := context.Background()
			add := func(id string, maxSize int64) {
				if err := appendMax(path, New(ContainerEventType, "start", id, nil), maxSize); err != nil {
					t.Fatal(err)
				}
			}
			add("seen", MaxSize)
			var got []string
			r := &reader{fn: func(m Message) error { got = append(got, m.Actor.ID); return nil }}
			old, cur, err := openSet(path)
			if err != nil || old != nil || cur == nil {
				t.Fatalf("openSet: %v %v %v", old, cur, err)
			}
			var done []*logFile
			defer func() {
				for _, f := range append(done, cur) {
					if f != nil {
						f.close()
					}
				}
			}()
			if err := r.catchUp(ctx, path, &cur, &done); err != nil {
				t.Fatal(err)
			}
			add("tail", MaxSize) // to the file the follower holds
			want := []string{"seen", "tail"}
			for i := range rotations {
				id := "rotated" + strconv.Itoa(i)
				add(id, 1) // size 1 rotates before every append
				want = append(want, id)
			}
			// As if all that happened between the follower's last drain
			// and its look at the file's name.
			if moved, err := r.advance(ctx, path, &cur, &done); err != nil || !moved {
				t.Fatalf("advance = %v, %v; want a move", moved, err)
			}
			if err := r.catchUp(ctx, path, &cur, &done); err != nil {
				t.Fatal(err)
			}
			add("live", MaxSize)
			want = append(want, "live")
			if err := r.catchUp(ctx, path, &cur, &done); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}
