package vigil

import "time"

// Sighting is what vigil keeps of the events it read, so that indicators
// that arrive later can be checked against them (a retro-hunt): one value of
// a detection rule's event fields that matched no indicator when it was
// read, per kind of value and UTC day of the events' @timestamp. Events are
// not kept: a Sighting counts them and refers to one of them.
type Sighting struct {
	// Kind is the kind of value, named after the rule lookups: "ip",
	// "hash", "url", "registry", "email", "cve" or "domain".
	Kind string
	// Key is the value in its kind's normal form, written so that the
	// values an indicator can match are one key or one range of keys
	// (internal/detect encodes and decodes it; stores compare it
	// bytewise).
	Key string
	// FirstSeen and LastSeen are the @timestamp of the day's first and
	// last events that carried the value.
	FirstSeen, LastSeen time.Time
	// Count is how many events carried it that day.
	Count int64
	// Event refers to one of these events: "event.id:" and its event.id,
	// or "line:" and a hash of its NDJSON line when it has none.
	Event string
	// EventTime is that event's @timestamp.
	EventTime time.Time
	// Field is the event field that carried the value in that event.
	Field string
}

// SightingRange selects sightings of one kind: those whose Key is Lo; or,
// when Hi is set, between Lo and Hi inclusive; or, with Prefix, those
// whose Key starts with Lo; or, with All, every one.
type SightingRange struct {
	Kind   string
	Lo, Hi string
	Prefix bool
	All    bool
}
