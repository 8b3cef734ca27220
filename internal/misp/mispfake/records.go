package mispfake

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Event is one MISP event.
type Event struct {
	// ID is the instance's event id (restSearch's event_id).
	ID          int64
	UUID        string
	Info        string
	Date        string // YYYY-MM-DD; "": the timestamp's day
	Timestamp   time.Time
	Published   bool
	Analysis    int // 0 initial, 1 ongoing, 2 complete
	ThreatLevel int // 1 high … 4 undefined
	OrgName     string
	OrgUUID     string
	Tags        []string
	Attributes  []Attribute
	Objects     []Object
}

// Object is a MISP object: attributes grouped by a template.
type Object struct {
	ID           int64
	UUID         string
	Name         string
	MetaCategory string
	Timestamp    time.Time
	Attributes   []Attribute
}

// Attribute is one MISP attribute.
type Attribute struct {
	ID        int64
	UUID      string
	Type      string
	Category  string
	Value     string
	ToIDs     bool
	Comment   string
	Timestamp time.Time
	// FirstSeen and LastSeen are written as ISO 8601 with microseconds
	// when set.
	FirstSeen, LastSeen time.Time
	Deleted             bool
	Tags                []string
	// Relation is the object_relation of an object's attribute.
	Relation string
	// Raw, when set, is served as the attribute's JSON instead of its
	// fields (in feeds and in restSearch), to inject malformed records.
	Raw string
}

// AllAttributes returns the event's attributes, its objects' included,
// with the object each belongs to (nil for the event's own).
func (e *Event) AllAttributes() []AttributeOf {
	var out []AttributeOf
	for i := range e.Attributes {
		out = append(out, AttributeOf{Attribute: &e.Attributes[i]})
	}
	for i := range e.Objects {
		o := &e.Objects[i]
		for j := range o.Attributes {
			out = append(out, AttributeOf{Attribute: &o.Attributes[j], Object: o})
		}
	}
	return out
}

// AttributeOf is an attribute with its object.
type AttributeOf struct {
	*Attribute
	Object *Object
}

// Count returns the number of attributes of the events.
func Count(events []Event) int {
	n := 0
	for i := range events {
		n += len(events[i].AllAttributes())
	}
	return n
}

// ---- JSON ----------------------------------------------------------------------

func appendString(b []byte, s string) []byte {
	js, _ := json.Marshal(s)
	return append(b, js...)
}

func appendUnixString(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, t.Unix(), 10)
	return append(b, '"')
}

// isoMicro is the ISO 8601 form MISP gives first_seen and last_seen.
const isoMicro = "2006-01-02T15:04:05.000000-07:00"

func appendSeen(b []byte, key string, t time.Time) []byte {
	b = append(b, `,"`+key+`":`...)
	if t.IsZero() {
		return append(b, "null"...)
	}
	return appendString(b, t.UTC().Format(isoMicro))
}

// tagColour gives tags the colours MISP shows; any colour would do.
func tagColour(name string) string {
	switch {
	case strings.HasPrefix(name, "tlp:white"), strings.HasPrefix(name, "tlp:clear"):
		return "#ffffff"
	case strings.HasPrefix(name, "tlp:green"):
		return "#33FF00"
	case strings.HasPrefix(name, "tlp:amber"):
		return "#FFC000"
	case strings.HasPrefix(name, "tlp:red"):
		return "#FF0000"
	}
	return "#0088cc"
}

// appendTags appends a Tag list; inherited marks event tags in restSearch
// answers.
func appendTags(b []byte, tags []string, feed, inherited bool) []byte {
	b = append(b, '[')
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendString(b, t)
		b = append(b, `,"colour":`...)
		b = appendString(b, tagColour(t))
		if feed {
			b = append(b, `,"local":false,"relationship_type":""`...)
		} else {
			b = append(b, `,"exportable":true`...)
			if inherited {
				b = append(b, `,"inherited":1`...)
			}
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendFeedAttribute appends an attribute as a feed event file holds it
// (PyMISP's to_feed: no ids, numbers as strings).
func appendFeedAttribute(b []byte, a *Attribute) []byte {
	if a.Raw != "" {
		return append(b, a.Raw...)
	}
	b = append(b, `{"uuid":`...)
	b = appendString(b, a.UUID)
	b = append(b, `,"type":`...)
	b = appendString(b, a.Type)
	b = append(b, `,"category":`...)
	b = appendString(b, a.Category)
	b = append(b, `,"value":`...)
	b = appendString(b, a.Value)
	b = append(b, `,"to_ids":`...)
	b = strconv.AppendBool(b, a.ToIDs)
	b = append(b, `,"timestamp":`...)
	b = appendUnixString(b, a.Timestamp)
	b = append(b, `,"comment":`...)
	b = appendString(b, a.Comment)
	if a.Relation != "" {
		b = append(b, `,"object_relation":`...)
		b = appendString(b, a.Relation)
	}
	if !a.FirstSeen.IsZero() {
		b = appendSeen(b, "first_seen", a.FirstSeen)
	}
	if !a.LastSeen.IsZero() {
		b = appendSeen(b, "last_seen", a.LastSeen)
	}
	if a.Deleted {
		b = append(b, `,"deleted":true`...)
	}
	b = append(b, `,"disable_correlation":false`...)
	if len(a.Tags) > 0 {
		b = append(b, `,"Tag":`...)
		b = appendTags(b, a.Tags, true, false)
	}
	return append(b, '}')
}

func (e *Event) date() string {
	if e.Date != "" {
		return e.Date
	}
	return e.Timestamp.UTC().Format("2006-01-02")
}

// AppendFeedJSON appends the event as a feed's <uuid>.json:
// {"Event":{…}} in the MISP core format, numbers as strings.
func (e *Event) AppendFeedJSON(b []byte) []byte {
	b = append(b, `{"Event":{"uuid":`...)
	b = appendString(b, e.UUID)
	b = append(b, `,"info":`...)
	b = appendString(b, e.Info)
	b = append(b, `,"date":`...)
	b = appendString(b, e.date())
	b = append(b, `,"threat_level_id":"`...)
	b = strconv.AppendInt(b, int64(e.ThreatLevel), 10)
	b = append(b, `","analysis":"`...)
	b = strconv.AppendInt(b, int64(e.Analysis), 10)
	b = append(b, `","timestamp":`...)
	b = appendUnixString(b, e.Timestamp)
	b = append(b, `,"publish_timestamp":`...)
	b = appendUnixString(b, e.Timestamp)
	b = append(b, `,"published":`...)
	b = strconv.AppendBool(b, e.Published)
	b = append(b, `,"extends_uuid":"","protected":false,"Orgc":{"name":`...)
	b = appendString(b, e.OrgName)
	b = append(b, `,"uuid":`...)
	b = appendString(b, e.OrgUUID)
	b = append(b, `},"Tag":`...)
	b = appendTags(b, e.Tags, true, false)
	b = append(b, `,"Attribute":[`...)
	for i := range e.Attributes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFeedAttribute(b, &e.Attributes[i])
	}
	b = append(b, ']')
	if len(e.Objects) > 0 {
		b = append(b, `,"Object":[`...)
		for i := range e.Objects {
			o := &e.Objects[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"uuid":`...)
			b = appendString(b, o.UUID)
			b = append(b, `,"name":`...)
			b = appendString(b, o.Name)
			b = append(b, `,"meta-category":`...)
			b = appendString(b, o.MetaCategory)
			b = append(b, `,"template_version":"1","timestamp":`...)
			b = appendUnixString(b, o.Timestamp)
			b = append(b, `,"Attribute":[`...)
			for j := range o.Attributes {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendFeedAttribute(b, &o.Attributes[j])
			}
			b = append(b, "]}"...)
		}
		b = append(b, ']')
	}
	return append(b, "}}"...)
}

// AppendManifestEntry appends the event's manifest member, as PyMISP's
// feed generator writes it (numbers as JSON integers).
func (e *Event) AppendManifestEntry(b []byte) []byte {
	b = appendString(b, e.UUID)
	b = append(b, `:{"Orgc":{"name":`...)
	b = appendString(b, e.OrgName)
	b = append(b, `,"uuid":`...)
	b = appendString(b, e.OrgUUID)
	b = append(b, `},"Tag":`...)
	b = appendTags(b, e.Tags, true, false)
	b = append(b, `,"info":`...)
	b = appendString(b, e.Info)
	b = append(b, `,"date":`...)
	b = appendString(b, e.date())
	b = append(b, `,"analysis":`...)
	b = strconv.AppendInt(b, int64(e.Analysis), 10)
	b = append(b, `,"threat_level_id":`...)
	b = strconv.AppendInt(b, int64(e.ThreatLevel), 10)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, e.Timestamp.Unix(), 10)
	return append(b, '}')
}

// Manifest returns the manifest.json of the events.
func Manifest(events []Event) []byte {
	b := []byte{'{'}
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = events[i].AppendManifestEntry(b)
	}
	return append(b, '}')
}

// Hashes returns the hashes.csv of the events: md5(value),event-uuid for
// each attribute value, a composite value (a|b) giving one line per part.
func Hashes(events []Event) []byte {
	var b []byte
	for i := range events {
		e := &events[i]
		for _, a := range e.AllAttributes() {
			if a.Raw != "" {
				continue
			}
			for _, part := range strings.Split(a.Value, "|") {
				sum := md5.Sum([]byte(part))
				b = hex.AppendEncode(b, sum[:])
				b = append(b, ',')
				b = append(b, e.UUID...)
				b = append(b, '\n')
			}
		}
	}
	return b
}

// appendAPIAttribute appends an attribute as /attributes/restSearch
// returns it: ids, numbers as strings, its Event and Object, and its tags
// with (includeEventTags) the event's, marked inherited.
func appendAPIAttribute(b []byte, e *Event, a AttributeOf, eventTags bool) []byte {
	if a.Raw != "" {
		return append(b, a.Raw...)
	}
	b = append(b, `{"id":"`...)
	b = strconv.AppendInt(b, a.ID, 10)
	b = append(b, `","event_id":"`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `","object_id":"`...)
	if a.Object != nil {
		b = strconv.AppendInt(b, a.Object.ID, 10)
	} else {
		b = append(b, '0')
	}
	b = append(b, `","object_relation":`...)
	if a.Relation != "" {
		b = appendString(b, a.Relation)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"category":`...)
	b = appendString(b, a.Category)
	b = append(b, `,"type":`...)
	b = appendString(b, a.Type)
	b = append(b, `,"to_ids":`...)
	b = strconv.AppendBool(b, a.ToIDs)
	b = append(b, `,"uuid":`...)
	b = appendString(b, a.UUID)
	b = append(b, `,"timestamp":`...)
	b = appendUnixString(b, a.Timestamp)
	b = append(b, `,"distribution":"5","sharing_group_id":"0","comment":`...)
	b = appendString(b, a.Comment)
	b = append(b, `,"deleted":`...)
	b = strconv.AppendBool(b, a.Deleted)
	b = append(b, `,"disable_correlation":false`...)
	b = appendSeen(b, "first_seen", a.FirstSeen)
	b = appendSeen(b, "last_seen", a.LastSeen)
	b = append(b, `,"value":`...)
	b = appendString(b, a.Value)
	b = append(b, `,"Event":{"org_id":"1","distribution":"3","id":"`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `","info":`...)
	b = appendString(b, e.Info)
	b = append(b, `,"orgc_id":"2","uuid":`...)
	b = appendString(b, e.UUID)
	b = append(b, '}')
	if a.Object != nil {
		b = append(b, `,"Object":{"id":"`...)
		b = strconv.AppendInt(b, a.Object.ID, 10)
		b = append(b, `","distribution":"5","sharing_group_id":"0"}`...)
	}
	tags := a.Tags
	if eventTags && len(e.Tags) > 0 {
		b = append(b, `,"Tag":`...)
		b = appendTags(b, tags, false, false)
		b = b[:len(b)-1] // reopen the list
		for i, t := range e.Tags {
			if i > 0 || len(tags) > 0 {
				b = append(b, ',')
			}
			one := appendTags(nil, []string{t}, false, true)
			b = append(b, one[1:len(one)-1]...)
		}
		b = append(b, ']')
	} else if len(tags) > 0 {
		b = append(b, `,"Tag":`...)
		b = appendTags(b, tags, false, false)
	}
	return append(b, '}')
}
