package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/internal/testenv"
)

// eventsAt appends three events at t0, t0+1s and t0+2s to root's log.
func eventsAt(t *testing.T, root string, t0 time.Time) []events.Message {
	t.Helper()
	ms := []events.Message{
		events.New(events.ContainerEventType, "create", "0123abcd", map[string]string{"name": "foo", "image": "busybox", "a.label": "x"}),
		events.New(events.ImageEventType, "tag", "sha256:feed", map[string]string{"name": "busybox:latest"}),
		events.New(events.VolumeEventType, "create", "data", nil),
	}
	for i := range ms {
		ts := t0.Add(time.Duration(i)*time.Second + 120*time.Microsecond)
		ms[i].Time, ms[i].TimeNano = ts.Unix(), ts.UnixNano()
		if err := events.Append(filepath.Join(root, "events.log"), ms[i]); err != nil {
			t.Fatal(err)
		}
	}
	return ms
}

func TestEventsCommand(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	t0 := time.Date(2024, 5, 1, 10, 11, 12, 0, time.UTC)
	eventsAt(t, root, t0)
	since, until := strconv.FormatInt(t0.Unix(), 10), t0.Add(time.Hour).Format(time.RFC3339)
	local := func(sec int) string {
		return t0.Add(time.Duration(sec)*time.Second + 120*time.Microsecond).Local().Format("2006-01-02T15:04:05.000000000Z07:00")
	}

	out, errs, code := berth(t, root, "events", "--since", since, "--until", until)
	want := local(0) + " container create 0123abcd (a.label=x, image=busybox, name=foo)\n" +
		local(1) + " image tag sha256:feed (name=busybox:latest)\n" +
		local(2) + " volume create data\n"
	if code != 0 || out != want {
		t.Errorf("events: exit %d, stderr %q\n got: %q\nwant: %q", code, errs, out, want)
	}

	out, _, code = berth(t, root, "events", "--since", since, "--until", until, "--format", "json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("--format json: exit %d, %q", code, out)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("--format json: no %q in %s", k, lines[0])
		}
	}
	if raw["from"] != "busybox" || raw["Action"] != "create" || raw["timeNano"] != float64(t0.Add(120*time.Microsecond).UnixNano()) {
		t.Errorf("--format json: %s", lines[0])
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"}, "container create foo\nimage tag busybox:latest\nvolume create <no value>\n"},
		{[]string{"-f", "type=image", "--format", "{{.Actor.ID}}"}, "sha256:feed\n"},
		{[]string{"-f", "event=create", "-f", "type=volume", "--format", "{{.Actor.ID}}"}, "data\n"},
		{[]string{"-f", "image=busybox", "--format", "{{.Actor.ID}}"}, "0123abcd\nsha256:feed\n"},
		{[]string{"-f", "label=a.label=x", "--format", "{{.Actor.ID}}"}, "0123abcd\n"},
		{[]string{"--until", t0.Add(1500 * time.Millisecond).Format(time.RFC3339Nano), "--format", "{{.Actor.ID}}"}, "0123abcd\nsha256:feed\n"},
	} {
		args := append([]string{"events", "--since", since, "--until", until}, tt.args...)
		out, errs, code := berth(t, root, args...)
		if code != 0 || out != tt.want {
			t.Errorf("%q: exit %d, stderr %q, got %q, want %q", tt.args, code, errs, out, tt.want)
		}
	}

	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-f", "foo=bar"}, 1, "Error response from daemon: Invalid filter 'foo'\n"},
		{[]string{"-f", "container"}, 125, "invalid argument \"container\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\n\nUsage:  berth events [OPTIONS]\n\nRun 'berth events --help' for more information\n"},
		{[]string{"--format", "{{.Nope}}"}, 64, "Error parsing format: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type events.Message\n"},
		{[]string{"--format", "{{"}, 64, "Error parsing format: template: :1: unclosed action\n"},
		{[]string{"--since", "yesterday"}, 1, "failed to parse value as time or duration: \"yesterday\"\n"},
		{[]string{"--since", "2024-05-02", "--until", "2024-05-01"}, 1, "Error response from daemon: `since` time (2024-05-02) cannot be after `until` time (2024-05-01)\n"},
		{[]string{"extra"}, 1, "berth: 'berth events' accepts no arguments\n"},
	} {
		_, errs, code := berth(t, root, append([]string{"events"}, tt.args...)...)
		if code != tt.code || !strings.HasPrefix(errs, tt.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tt.args, code, errs, tt.code, tt.stderr)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEventsStream: without --since or --until, berth events shows what
// happens from now on, until interrupted; with --until ahead, it stops then.
func TestEventsStream(t *testing.T) {
	testenv.RequiresRoot(t)
	root := t.TempDir()
	eventsAt(t, root, time.Now().Add(-time.Hour))
	log := filepath.Join(root, "events.log")
	stream := func(ctx context.Context, args ...string) (*syncBuffer, chan int) {
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, append([]string{"--root", root, "--runroot", t.TempDir(), "events", "--format", "{{.Actor.ID}}"}, args...), &out, &errb)
		}()
		return &out, done
	}
	waitFor := func(out *syncBuffer, id string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), id+"\n") {
			if time.Now().After(deadline) {
				t.Fatalf("%s never shown; output %q", id, out.String())
			}
			events.Append(log, events.New(events.ContainerEventType, "start", id, nil))
			time.Sleep(50 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	out, done := stream(ctx)
	waitFor(out, "live")
	if strings.Contains(out.String(), "0123abcd") {
		t.Errorf("showed an event from before it started: %q", out.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after interrupt", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("berth events did not stop when cancelled")
	}

	start := time.Now()
	// "-3s" is 3 s ahead, to the second as docker takes it: 2 to 3 s.
	out, done = stream(context.Background(), "--since", "2h", "--until", "-3s")
	waitFor(out, "before-until")
	select {
	case code := <-done:
		if code != 0 || time.Since(start) < 1900*time.Millisecond {
			t.Errorf("exit %d after %v", code, time.Since(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("berth events did not stop at --until")
	}
	if got := out.String(); !strings.HasPrefix(got, "0123abcd\nsha256:feed\ndata\n") {
		t.Errorf("--since 2h: %q", got)
	}
}
