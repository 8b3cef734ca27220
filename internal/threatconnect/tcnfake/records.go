package tcnfake

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeLayout is the layout of ThreatConnect's dates.
const TimeLayout = "2006-01-02T15:04:05Z"

// KV is one type-specific value field of an indicator, e.g. {"ip",
// "198.51.100.7"} or {"AS Number", "ASN13335"}. Value is a string, an
// int64, a float64 or a bool.
type KV struct {
	Key   string
	Value any
}

// Tag is an indicator tag; a tag with a TechniqueID is an ATT&CK technique.
type Tag struct {
	ID          int64
	Name        string
	TechniqueID string
	Tactics     []string
	Platforms   []string
	LastUsed    time.Time
}

// Attribute is an attribute of an indicator or a group.
type Attribute struct {
	ID        int64
	Type      string
	Value     string
	CreatedBy User
	DateAdded time.Time
}

// User is the author of an attribute or a group.
type User struct {
	ID        int64
	UserName  string
	FirstName string
	LastName  string
}

// Group is an associated group.
type Group struct {
	ID         int64
	Type       string // Incident, Adversary, Report, Email…
	Name       string
	OwnerID    int64
	OwnerName  string
	DateAdded  time.Time
	CreatedBy  User
	To, From   string // Email groups
	Attributes []Attribute
}

// Associated is an associated indicator.
type Associated struct {
	ID           int64
	Type         string
	Summary      string
	Values       []KV
	OwnerName    string
	LastModified time.Time
	Confidence   int
	Rating       float64
}

// Indicator is one indicator as the fake holds it. The sub-collections are
// served only when the request asks for them (fields=...).
type Indicator struct {
	ID           int64
	Type         string // Address, EmailAddress, File, Host, URL, ASN, CIDR, Email Subject, Hashtag, Mutex, Registry Key, User Agent
	Summary      string
	Values       []KV // the type's value fields, in order
	OwnerID      int64
	OwnerName    string
	DateAdded    time.Time
	LastModified time.Time
	Rating       float64
	Confidence   int
	Description  string
	ThreatScore  int
	// SecurityLabels are label names, e.g. "TLP:AMBER".
	SecurityLabels []string
	Tags           []Tag
	Groups         []Group      // fields=associatedGroups (attributes: fields=associatedGroups.attributes)
	Associated     []Associated // fields=associatedIndicators
	Attributes     []Attribute  // fields=attributes
	// Raw, when set, is served verbatim instead of the fields above (it
	// must be valid JSON, of any type). LastModified and ID still place it
	// in listings.
	Raw []byte
}

// Fields are the additional fields a request asked for.
type Fields struct {
	Groups, GroupAttributes, Associated, Attributes bool
	SecurityLabels, Tags, ThreatAssess              bool
}

// AppendJSON appends the indicator as the v3 API serializes it with the
// given fields.
func (r *Indicator) AppendJSON(b []byte, f Fields) []byte {
	if r.Raw != nil {
		return append(b, r.Raw...)
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, r.ID, 10)
	b = appendTimeField(b, "dateAdded", r.DateAdded)
	b = append(b, `,"ownerId":`...)
	b = strconv.AppendInt(b, r.OwnerID, 10)
	b = appendStringField(b, "ownerName", r.OwnerName)
	b = appendStringField(b, "webLink", "https://app.threatconnect.com/#/details/indicators/"+strconv.FormatInt(r.ID, 10)+"/overview")
	b = appendStringField(b, "type", r.Type)
	b = appendTimeField(b, "lastModified", r.LastModified)
	b = append(b, `,"rating":`...)
	b = strconv.AppendFloat(b, r.Rating, 'f', -1, 64)
	b = append(b, `,"confidence":`...)
	b = strconv.AppendInt(b, int64(r.Confidence), 10)
	if r.Description != "" {
		b = appendStringField(b, "description", r.Description)
	}
	b = appendStringField(b, "summary", r.Summary)
	b = append(b, `,"privateFlag":false,"active":true,"activeLocked":false`...)
	for _, kv := range r.Values {
		b = append(b, ',')
		b = appendString(b, kv.Key)
		b = append(b, ':')
		b = appendAny(b, kv.Value)
	}
	if f.ThreatAssess {
		b = append(b, `,"threatAssessRating":`...)
		b = strconv.AppendFloat(b, r.Rating, 'f', -1, 64)
		b = append(b, `,"threatAssessConfidence":`...)
		b = strconv.AppendInt(b, int64(r.Confidence), 10)
		b = append(b, `,"threatAssessScore":`...)
		b = strconv.AppendInt(b, int64(r.ThreatScore), 10)
		b = append(b, `,"threatAssessScoreObserved":0,"threatAssessScoreFalsePositive":0`...)
	}
	if f.SecurityLabels {
		b = append(b, `,"securityLabels":{`...)
		if len(r.SecurityLabels) > 0 {
			b = append(b, `"data":[`...)
			for i, l := range r.SecurityLabels {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"id":`...)
				b = strconv.AppendInt(b, int64(i+1), 10)
				b = appendStringField(b, "name", l)
				b = append(b, `,"color":"FFC000","owner":"System","dateAdded":"2016-08-31T00:00:00Z"}`...)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if f.Tags {
		b = append(b, `,"tags":{`...)
		if len(r.Tags) > 0 {
			b = append(b, `"data":[`...)
			for i, t := range r.Tags {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"id":`...)
				b = strconv.AppendInt(b, t.ID, 10)
				b = appendStringField(b, "name", t.Name)
				if t.TechniqueID != "" {
					b = appendStringField(b, "techniqueId", t.TechniqueID)
				}
				b = appendListField(b, "tactics", t.Tactics)
				b = appendListField(b, "platforms", t.Platforms)
				b = appendTimeField(b, "lastUsed", t.LastUsed)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if f.Groups {
		b = append(b, `,"associatedGroups":{`...)
		if len(r.Groups) > 0 {
			b = append(b, `"data":[`...)
			for i := range r.Groups {
				if i > 0 {
					b = append(b, ',')
				}
				b = r.Groups[i].appendJSON(b, f.GroupAttributes)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if f.Associated {
		b = append(b, `,"associatedIndicators":{`...)
		if len(r.Associated) > 0 {
			b = append(b, `"data":[`...)
			for i, a := range r.Associated {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"id":`...)
				b = strconv.AppendInt(b, a.ID, 10)
				b = appendStringField(b, "type", a.Type)
				b = appendStringField(b, "summary", a.Summary)
				b = appendStringField(b, "ownerName", a.OwnerName)
				b = appendTimeField(b, "lastModified", a.LastModified)
				b = append(b, `,"confidence":`...)
				b = strconv.AppendInt(b, int64(a.Confidence), 10)
				b = append(b, `,"rating":`...)
				b = strconv.AppendFloat(b, a.Rating, 'f', -1, 64)
				b = append(b, `,"active":true,"activeLocked":false,"privateFlag":false`...)
				for _, kv := range a.Values {
					b = append(b, ',')
					b = appendString(b, kv.Key)
					b = append(b, ':')
					b = appendAny(b, kv.Value)
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if f.Attributes {
		b = append(b, `,"attributes":{`...)
		if len(r.Attributes) > 0 {
			b = appendAttributes(b, r.Attributes)
		}
		b = append(b, '}')
	}
	b = appendStringField(b, "legacyLink", "https://app.threatconnect.com/auth/indicators/details/indicator.xhtml?id="+strconv.FormatInt(r.ID, 10))
	return append(b, '}')
}

func (g *Group) appendJSON(b []byte, attributes bool) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, g.ID, 10)
	b = appendStringField(b, "type", g.Type)
	b = appendStringField(b, "name", g.Name)
	b = append(b, `,"ownerId":`...)
	b = strconv.AppendInt(b, g.OwnerID, 10)
	b = appendStringField(b, "ownerName", g.OwnerName)
	b = appendTimeField(b, "dateAdded", g.DateAdded)
	b = append(b, `,"createdBy":`...)
	b = g.CreatedBy.appendJSON(b)
	if g.To != "" {
		b = appendStringField(b, "to", g.To)
	}
	if g.From != "" {
		b = appendStringField(b, "from", g.From)
	}
	b = append(b, `,"upVoteCount":"0","downVoteCount":"0"`...)
	if attributes {
		b = append(b, `,"attributes":{`...)
		if len(g.Attributes) > 0 {
			b = appendAttributes(b, g.Attributes)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func (u *User) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, u.ID, 10)
	b = appendStringField(b, "userName", u.UserName)
	b = appendStringField(b, "firstName", u.FirstName)
	b = appendStringField(b, "lastName", u.LastName)
	return append(b, `,"owner":"Demo Organization"}`...)
}

func appendAttributes(b []byte, attrs []Attribute) []byte {
	b = append(b, `"data":[`...)
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, a.ID, 10)
		b = appendTimeField(b, "dateAdded", a.DateAdded)
		b = appendStringField(b, "type", a.Type)
		b = appendStringField(b, "value", a.Value)
		b = append(b, `,"createdBy":`...)
		b = a.CreatedBy.appendJSON(b)
		b = appendTimeField(b, "lastModified", a.DateAdded)
		b = append(b, `,"pinned":false,"default":false}`...)
	}
	return append(b, ']')
}

// Deletion is one record of the deleted-indicators listing.
type Deletion struct {
	OwnerName string
	Date      time.Time // when the indicator was deleted (served as dateAdded)
	Type      string
	Summary   string
}

func (d *Deletion) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = appendString(b, "ownerName")
	b = append(b, ':')
	b = appendString(b, d.OwnerName)
	b = appendTimeField(b, "dateAdded", d.Date)
	b = appendStringField(b, "type", d.Type)
	b = appendStringField(b, "summary", d.Summary)
	return append(b, '}')
}

// Owner is an owner the API user can see.
type Owner struct {
	ID            int64
	Name          string
	Type          string // Organization, Community, Source
	Role          string
	PermIndicator string
}

func (o *Owner) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, o.ID, 10)
	b = appendStringField(b, "name", o.Name)
	b = appendStringField(b, "type", o.Type)
	b = appendStringField(b, "ownerRole", o.Role)
	b = appendStringField(b, "permIndicator", o.PermIndicator)
	return append(b, '}')
}

// ---- JSON writing ----------------------------------------------------------

func appendStringField(b []byte, key, v string) []byte {
	b = append(b, ',')
	b = appendString(b, key)
	b = append(b, ':')
	return appendString(b, v)
}

func appendTimeField(b []byte, key string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(b, ',')
	b = appendString(b, key)
	b = append(b, ':', '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"')
}

func appendListField(b []byte, key string, list []string) []byte {
	if len(list) == 0 {
		return b
	}
	b = append(b, ',')
	b = appendString(b, key)
	b = append(b, `:{"count":`...)
	b = strconv.AppendInt(b, int64(len(list)), 10)
	b = append(b, `,"data":[`...)
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, "]}"...)
}

func appendAny(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendString(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case float64:
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	}
	return append(b, "null"...)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}
