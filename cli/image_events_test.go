package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestImageEvents: import, tag and rmi leave docker's image events.
func TestImageEvents(t *testing.T) {
	h := newHost(t) // imports busybox
	h.ok("tag", "busybox", "other:1")
	h.ok("rmi", "other:1")
	h.ok("rmi", "busybox")
	now := time.Now()
	until := fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond())
	out := h.ok("events", "--since", "1h", "--until", until, "--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	want := "import busybox:latest\ntag other:1\nuntag other:1\nuntag busybox:latest\n"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "\ndelete sha256:") {
		t.Fatalf("image events:\n%s\nwant a prefix of:\n%s", out, want)
	}
}
