package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestContainerEvents: a container's life leaves docker's events, the
// shim's die among them, with the image and name attributes.
func TestContainerEvents(t *testing.T) {
	h := newHost(t)
	h.run("", "run", "--name", "evt", "busybox", "sh", "-c", "exit 3")
	h.run("", "wait", "evt")
	h.ok("rm", "evt")
	now := time.Now()
	out := h.ok("events", "--since", "1h", "--until", fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()),
		"--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.image}} {{.Actor.Attributes.exitCode}}")
	want := "create evt busybox \nattach evt busybox \nstart evt busybox \ndie evt busybox 3\ndestroy evt busybox \n"
	if strings.ReplaceAll(out, "<no value>", "") != want {
		t.Fatalf("container events:\n%s\nwant:\n%s", out, want)
	}
}
