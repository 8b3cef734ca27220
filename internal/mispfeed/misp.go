package mispfeed

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// MISPType is a MISP attribute type vigil publishes, with the category MISP
// pairs it with by default (describeTypes.json sane_defaults) and the
// categories it allows there (category_type_mappings).
type MISPType struct {
	Type     string
	Category string
	Allowed  []string
	// ECS is the threat.indicator.type the attribute comes from.
	ECS string
}

// Types are the MISP types of a feed, one table for every check: the
// attribute type, its default category and to_ids true.
var Types = []MISPType{
	{"domain", "Network activity", []string{"Payload delivery", "Network activity", "External analysis"}, "domain-name"},
	{"url", "Network activity", []string{"Payload delivery", "Network activity", "External analysis"}, "url"},
	{"ip-dst", "Network activity", []string{"Payload delivery", "Network activity", "External analysis"}, "ipv4-addr, ipv6-addr"},
	{"email-src", "Payload delivery", []string{"Payload delivery", "Network activity", "Social network"}, "email-addr"},
	{"md5", "Payload delivery", []string{"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"}, "file"},
	{"sha1", "Payload delivery", []string{"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"}, "file"},
	{"sha256", "Payload delivery", []string{"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"}, "file"},
}

// category returns the category of a MISP type.
func category(typ string) string {
	for _, t := range Types {
		if t.Type == typ {
			return t.Category
		}
	}
	return ""
}

// Namespace is the UUIDv5 namespace of every UUID vigil derives for MISP:
// an event's is v5(Namespace, "device|group|YYYY-MM-DD"), an attribute's
// v5(event UUID, "type|value"), the default organisation's v5(Namespace,
// "org|name"). It never changes, so UUIDs stay the same across restarts
// and installations.
var Namespace = uuid.MustParse("3f6a4e8c-2b1d-5c7e-9a04-6d5b8e2f1c93")

// EventUUID is the UUID of a device's event of a group on a UTC day.
func EventUUID(device, group, day string) string {
	return uuid.NewSHA1(Namespace, []byte(device+"|"+group+"|"+day)).String()
}

// AttributeUUID is the UUID of an attribute of an event. It differs between
// events, as MISP wants attribute UUIDs unique across its instance.
func AttributeUUID(event, typ, value string) string {
	u, _ := attributeUUID(uuid.MustParse(event), typ, value, nil)
	return u.String()
}

// OrgUUID is the default organisation UUID for an organisation name.
func OrgUUID(name string) string {
	return uuid.NewSHA1(Namespace, []byte("org|"+name)).String()
}

// TLP levels, least restrictive first; the rank is what the store keeps.
var tlpLevels = []string{"", "clear", "white", "green", "amber", "amber+strict", "red"}

func tlpRank(s string) int {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, l := range tlpLevels {
		if l == s {
			return i
		}
	}
	return 0
}

var tlpColours = map[string]string{"clear": "#ffffff", "white": "#ffffff", "green": "#33ff00", "amber": "#ffc000", "amber+strict": "#ffc000", "red": "#ff2b2b"}

// Threat levels (MISP threat_level_id).
const (
	threatHigh      = 1
	threatMedium    = 2
	threatLow       = 3
	threatUndefined = 4
)

// Tag is a MISP tag.
type Tag struct {
	Name   string `json:"name"`
	Colour string `json:"colour,omitempty"`
}

// Org is a MISP organisation.
type Org struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// Attribute is a MISP attribute as a feed event carries it. Numbers are
// strings, as the MISP core format writes them.
type Attribute struct {
	UUID               string `json:"uuid"`
	Type               string `json:"type"`
	Category           string `json:"category"`
	Value              string `json:"value"`
	ToIDs              bool   `json:"to_ids"`
	Timestamp          string `json:"timestamp"`
	Comment            string `json:"comment"`
	FirstSeen          string `json:"first_seen,omitempty"`
	LastSeen           string `json:"last_seen,omitempty"`
	Deleted            bool   `json:"deleted"`
	DisableCorrelation bool   `json:"disable_correlation"`
	Tag                []Tag  `json:"Tag,omitempty"`
}

// ManifestEntry is an event's entry in manifest.json.
type ManifestEntry struct {
	Info          string `json:"info"`
	Orgc          Org    `json:"Orgc"`
	Tag           []Tag  `json:"Tag"`
	Date          string `json:"date"`
	Analysis      string `json:"analysis"`
	ThreatLevelID string `json:"threat_level_id"`
	Timestamp     string `json:"timestamp"`
}

// EventHeader is an event's fields before its attributes.
type EventHeader struct {
	UUID             string `json:"uuid"`
	Info             string `json:"info"`
	Date             string `json:"date"`
	Analysis         string `json:"analysis"`
	ThreatLevelID    string `json:"threat_level_id"`
	Published        bool   `json:"published"`
	Timestamp        string `json:"timestamp"`
	PublishTimestamp string `json:"publish_timestamp"`
	Orgc             Org    `json:"Orgc"`
	Tag              []Tag  `json:"Tag"`
}

// analysisComplete is MISP's analysis level 2: the IOCs are vetted intelligence.
const analysisComplete = "2"

// seenLayout is how first_seen and last_seen are written: ISO 8601 with
// microseconds and the zone, as MISP stores them.
const seenLayout = "2006-01-02T15:04:05.000000-07:00"

func unixString(t int64) string { return strconv.FormatInt(t, 10) }

// dayOf is the UTC day of t, as events are named and dated.
func dayOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// WithinLimit returns how many of events (newest first) a manifest lists:
// the newest ones whose attributes add up to at most limit. The newest
// event is always listed: a pull never adds more than the limit to it.
func WithinLimit(events []EventMeta, limit int) int {
	total := 0
	for i, e := range events {
		total += e.Attributes
		if total > limit && i > 0 {
			return i
		}
	}
	return len(events)
}
