// Package events is berth's event log: what `docker events` shows. berth
// has no daemon to hold a ring of events in memory, so every berth process
// appends to one shared file and `berth events` reads and follows it.
//
// On disk, under the engine's root:
//
//	events.log     live file: one Message as JSON per line, appended
//	events.log.1   the previous live file, renamed away at MaxSize
//
// Writers serialize on flock(2) of the live file: under the lock a writer
// checks that the file it opened is still the one named events.log (a
// rotation may have renamed it), stamps the time, rotates when the file has
// reached MaxSize, and adds its line with one write(2) to an O_APPEND fd.
// So lines never interleave, the file's order is the order of the events'
// times, and the log stays below about 2×MaxSize.
//
// A rotated file is frozen: nobody writes to it once the rename is done
// (a writer that locked it after the rename sees it is no longer
// events.log and starts over). Readers read events.log.1, then events.log;
// a follower that finds events.log replaced finishes its old file, reads
// events.log.1 if that is not the file it just finished, then moves on. A
// follower that falls more than one rotation behind (MaxSize of events,
// some ten thousand) loses the files in between, as Docker's daemon drops
// events for a subscriber that does not keep up.
package events

import (
	"maps"
)

// Event types, Docker's.
const (
	ContainerEventType = "container"
	ImageEventType     = "image"
	VolumeEventType    = "volume"
	NetworkEventType   = "network"
)

// Message is one event, in the JSON shape of Docker's API (GET /events).
type Message struct {
	// Status, ID and From are the fields of API versions before 1.22,
	// which Docker still fills for container and image events: Status is
	// the Action, ID the Actor's ID, From a container's image.
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`

	// Type is what the event is about: container, image, volume, network.
	Type string `json:"Type"`
	// Action is what happened: create, start, die, destroy, pull, tag, ...
	// A few carry a detail after a colon ("exec_start: sh -c ...",
	// "health_status: healthy").
	Action string `json:"Action"`
	Actor  Actor  `json:"Actor"`
	// Scope is "local" for everything berth does.
	Scope string `json:"scope"`
	// Time and TimeNano are when it happened, in Unix seconds and
	// nanoseconds; Append fills them when they are zero.
	Time     int64 `json:"time"`
	TimeNano int64 `json:"timeNano"`
}

// Actor is the object an event is about: its ID and attributes such as
// "name", "image", the container's labels, or "exitCode" for die.
type Actor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// New builds the message Docker's daemon logs for an action on an actor:
// local scope and, for container and image events, the legacy status, id
// and from fields. The time is left for Append to stamp. attrs is copied.
func New(typ, action, id string, attrs map[string]string) Message {
	a := make(map[string]string, len(attrs))
	maps.Copy(a, attrs)
	m := Message{Type: typ, Action: action, Actor: Actor{ID: id, Attributes: a}, Scope: "local"}
	switch typ {
	case ContainerEventType:
		m.Status, m.ID, m.From = action, id, a["image"]
	case ImageEventType:
		m.Status, m.ID = action, id
	}
	return m
}
