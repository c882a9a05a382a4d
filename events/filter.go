package events

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/ref"
)

// Filter chooses events as the --filter flags of `docker events` do. The
// zero Filter passes everything. Values of one key are OR'ed and keys are
// AND'ed, except label: every label given must match (Docker's rule).
//
//	container, volume, network (and daemon, plugin, node, service, secret,
//	config): a prefix of the actor's ID or of its "name" attribute
//	event:  the action ("exec_start" etc. also match "exec_start: sh")
//	image:  the actor's ID or image name, with or without the tag
//	label:  key or key=value among the actor's attributes
//	type:   the event type
//	scope:  the event scope ("local")
type Filter struct {
	fields map[string][]string
}

// nameKeys are the keys that match an actor's ID or name by prefix;
// Docker checks each against every event, whatever its type.
var nameKeys = []string{"container", "volume", "network", "daemon", "plugin", "node", "service", "secret", "config"}

// validKey reports whether ParseFilters accepts key.
func validKey(key string) bool {
	switch key {
	case "event", "image", "label", "type", "scope":
		return true
	}
	return slices.Contains(nameKeys, key)
}

// invalidError is an ErrInvalidArgument that prints only Docker's message.
type invalidError struct{ msg string }

func (e invalidError) Error() string { return e.msg }
func (e invalidError) Unwrap() error { return errdefs.ErrInvalidArgument }

// ParseFilters parses --filter values, each "key=value" as the docker CLI
// takes them (the key case-insensitive, both trimmed). A value without "="
// or an unknown key is errdefs.ErrInvalidArgument, in Docker's words.
func ParseFilters(args []string) (Filter, error) {
	f := Filter{fields: map[string][]string{}}
	for _, a := range args {
		if a == "" {
			continue // the docker CLI drops empty --filter values
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return Filter{}, invalidError{"bad format of filter (expected name=value)"}
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !validKey(k) {
			return Filter{}, invalidError{fmt.Sprintf("Invalid filter '%s'", k)}
		}
		f.fields[k] = append(f.fields[k], v)
	}
	return f, nil
}

// Match reports whether m passes the filter.
func (f Filter) Match(m Message) bool {
	if !f.matchEvent(m.Action) || !f.exact("type", m.Type) || !f.exact("scope", m.Scope) {
		return false
	}
	for _, k := range nameKeys {
		if !f.fuzzy(k, m.Actor.ID) && !f.fuzzy(k, m.Actor.Attributes["name"]) {
			return false
		}
	}
	return f.matchImage(m) && f.matchLabels(m.Actor.Attributes)
}

// exact reports whether the key is unset or one of its values is s.
func (f Filter) exact(key, s string) bool {
	vals := f.fields[key]
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if v == s {
			return true
		}
	}
	return false
}

// fuzzy reports whether the key is unset or one of its values is a prefix
// of s.
func (f Filter) fuzzy(key, s string) bool {
	vals := f.fields[key]
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if strings.HasPrefix(s, v) {
			return true
		}
	}
	return false
}

// matchEvent matches the action exactly, or by prefix when one of the
// values is an action Docker gives a detail after a colon.
func (f Filter) matchEvent(action string) bool {
	for _, v := range f.fields["event"] {
		switch v {
		case "health_status", "exec_create", "exec_start":
			return f.fuzzy("event", action)
		}
	}
	return f.exact("event", action)
}

// matchImage matches an image event's ID or "name", or a container
// event's "image", each as given and as its repository without the tag.
func (f Filter) matchImage(m Message) bool {
	if len(f.fields["image"]) == 0 {
		return true
	}
	attr := "image"
	if m.Type == ImageEventType {
		attr = "name"
	}
	name := m.Actor.Attributes[attr]
	return f.exact("image", m.Actor.ID) || f.exact("image", name) ||
		f.exact("image", stripTag(m.Actor.ID)) || f.exact("image", stripTag(name))
}

// stripTag is an image name's repository in its familiar form
// ("busybox:1.36" → "busybox"), or s itself if it is not a name.
func stripTag(s string) string {
	r, err := ref.Parse(s)
	if err != nil {
		return s
	}
	return r.FamiliarName()
}

// matchLabels reports whether every label value (key or key=value) is
// among the attributes.
func (f Filter) matchLabels(attrs map[string]string) bool {
	for _, l := range f.fields["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := attrs[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}
