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

// SightingBatch is sightings in compact form, as an engine hands a batch
// of them to a store: no string and no time.Time per sighting, so that a
// batch of many thousand values costs few allocations. Entries may repeat
// a (day, kind, key): the store merges them, and on a tie of LastSeen the
// later entry's event is kept.
type SightingBatch struct {
	// Data holds the keys and event references of the entries.
	Data []byte
	// Kinds and Fields are the kinds and event fields the entries name.
	Kinds, Fields []string
	// Entries are the sightings.
	Entries []SightingEntry
}

// SightingEntry is a Sighting of a SightingBatch. Times are Unix
// milliseconds; Key and Event are Data[Key[0]:Key[1]] and
// Data[Event[0]:Event[1]]; Kind and Field index the batch's Kinds and
// Fields.
type SightingEntry struct {
	Key, Event          [2]uint32
	Kind, Field         uint32
	FirstSeen, LastSeen int64
	Count               int64
	EventTime           int64
}

// Sighting returns entry i as a Sighting.
func (b *SightingBatch) Sighting(i int) Sighting {
	e := &b.Entries[i]
	return Sighting{Kind: b.Kinds[e.Kind], Key: string(b.Data[e.Key[0]:e.Key[1]]),
		FirstSeen: time.UnixMilli(e.FirstSeen).UTC(), LastSeen: time.UnixMilli(e.LastSeen).UTC(), Count: e.Count,
		Event: string(b.Data[e.Event[0]:e.Event[1]]), EventTime: time.UnixMilli(e.EventTime).UTC(), Field: b.Fields[e.Field]}
}

// AppendSighting appends s to b.
func (b *SightingBatch) AppendSighting(s Sighting) {
	e := SightingEntry{Kind: uint32(nameIndex(&b.Kinds, s.Kind)), Field: uint32(nameIndex(&b.Fields, s.Field)),
		FirstSeen: s.FirstSeen.UnixMilli(), LastSeen: s.LastSeen.UnixMilli(), Count: s.Count, EventTime: s.EventTime.UnixMilli()}
	e.Key[0] = uint32(len(b.Data))
	b.Data = append(b.Data, s.Key...)
	e.Key[1] = uint32(len(b.Data))
	e.Event[0] = e.Key[1]
	b.Data = append(b.Data, s.Event...)
	e.Event[1] = uint32(len(b.Data))
	b.Entries = append(b.Entries, e)
}

// nameIndex returns the index of s in *names, appending it when it is not
// there.
func nameIndex(names *[]string, s string) int {
	for i, n := range *names {
		if n == s {
			return i
		}
	}
	*names = append(*names, s)
	return len(*names) - 1
}
