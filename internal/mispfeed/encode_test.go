package mispfeed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// FuzzAppendCandidate holds appendCandidate to json.Marshal of the
// Attribute built from the candidate the plain way (attribute below), for
// any strings (HTML characters, control characters, invalid UTF-8,
// U+2028) in every field, and with or without each optional part.
func FuzzAppendCandidate(f *testing.F) {
	f.Add("login.example.com", "ThreatConnect", "High", "85", "Medium", "ransomware", "APT 1", "green", int64(1711134000), true)
	f.Add("http://a.example/?q=<script>&x=1", "a\tb\nc\x00\x7f", "", "", "", `"quoted" \ back`, "", "", int64(0), false)
	f.Add("\xff\xfe bad utf-8 \u2028\u2029 é", "ümlaut \\ \"quoted\"", "None", "", "\x80", "  ", "\xe2\x80", "amber+strict", int64(-62135596800), true)
	f.Fuzz(func(t *testing.T, val, source, confidence, score, severity, tag, actor, tlp string, seen int64, more bool) {
		c := &candidate{value: value{Type: "url", Value: val}, enrichment: enrichment{
			Sources: []string{source}, Confidence: confidence, SourceConfidence: score, Severity: severity, TLP: tlp,
			UserTags: []string{tag}, ThreatActors: []string{actor},
		}}
		if seen != 0 {
			c.FirstSeen, c.LastSeen = time.Unix(seen, 0).UTC(), time.Unix(seen/2, 0).UTC()
		}
		if more {
			c.Sources = append(c.Sources, actor)
			c.Alerts = []string{source, tag}
			c.SystemTags, c.Malware, c.Campaigns = []string{tag}, []string{val}, []string{severity, tag}
		}
		u := AttributeUUID("6cd1aa97-b555-54a3-b92f-1d13c14deb06", c.Type, c.Value)
		want, err := json.Marshal(c.attribute(u, "1717243200"))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendCandidate([]byte("prefix"), c, u, "1717243200"); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("appendCandidate:\n%s\njson.Marshal:\n%s", got, want)
		}
	})
}

// TestAttributeUUID holds the pull's UUIDv5 to the uuid package's.
func TestAttributeUUID(t *testing.T) {
	event := uuid.MustParse("45d76b9f-b848-5878-b68d-36b45463dc20")
	var buf []byte
	for _, c := range []struct{ typ, value string }{{"domain", "login.example.com"}, {"url", "http://a.example/é?x=<1>"}, {"md5", ""}, {"", "|"}} {
		var got uuid.UUID
		got, buf = attributeUUID(event, c.typ, c.value, buf)
		if want := uuid.NewSHA1(event, []byte(c.typ+"|"+c.value)); got != want {
			t.Errorf("%s|%s: %s, want %s", c.typ, c.value, got, want)
		}
	}
}

// attribute is the candidate as a MISP attribute, with its UUID in the
// event and the event's timestamp: json.Marshal of it is what
// appendCandidate writes, built the plain way.
func (c *candidate) attribute(uuid, ts string) Attribute {
	a := Attribute{
		UUID:      uuid,
		Type:      c.Type,
		Category:  category(c.Type),
		Value:     c.Value,
		ToIDs:     true,
		Timestamp: ts,
		Comment:   c.comment(),
		Tag:       c.tags(),
	}
	if !c.FirstSeen.IsZero() {
		a.FirstSeen = c.FirstSeen.Format(seenLayout)
		a.LastSeen = c.LastSeen.Format(seenLayout)
	}
	return a
}

func machineTag(ns, value string) (Tag, bool) {
	v := tagValue(value)
	return Tag{Name: ns + `="` + v + `"`}, v != ""
}

// tags returns the attribute tags of an enrichment (eachTag).
func (e *enrichment) tags() []Tag {
	var out []Tag
	e.eachTag(func(ns, value, colour string) {
		if ns != "" {
			value = ns + `="` + value + `"`
		}
		out = append(out, Tag{Name: value, Colour: colour})
	})
	return out
}

// comment sums the enrichment up in one line, for MISP's attribute list.
func (e *enrichment) comment() string {
	var parts []string
	if len(e.Sources) > 0 {
		parts = append(parts, strings.Join(e.Sources, ", "))
	}
	switch {
	case e.Confidence != "" && e.SourceConfidence != "":
		parts = append(parts, "confidence "+e.Confidence+" ("+e.SourceConfidence+")")
	case e.Confidence != "":
		parts = append(parts, "confidence "+e.Confidence)
	case e.SourceConfidence != "":
		parts = append(parts, "confidence "+e.SourceConfidence)
	}
	if e.Severity != "" {
		parts = append(parts, "severity "+e.Severity)
	}
	if len(e.Alerts) > 0 {
		parts = append(parts, "alerts "+strings.Join(e.Alerts, ", "))
	}
	if len(e.Campaigns) > 0 {
		parts = append(parts, "campaigns "+strings.Join(e.Campaigns, ", "))
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.Join(parts, "; "))
}

// TestEncodeAttributes encodes candidates on several goroutines: the
// attributes come back in CompareAttributes order, each with its own body.
func TestEncodeAttributes(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	types := []string{"url", "domain", "md5", "ip-dst"}
	var cands []*candidate
	for i := range 5000 {
		v := fmt.Sprintf("v%05d", (i*7919)%5000)
		cands = append(cands, &candidate{value: value{Type: types[i%len(types)], Value: v}, enrichment: enrichment{Sources: []string{v}}})
	}
	const event = "45d76b9f-b848-5878-b68d-36b45463dc20"
	attrs, err := encodeAttributes(cands, event, 1717243200)
	if err != nil || len(attrs) != len(cands) {
		t.Fatalf("%d attributes, %v", len(attrs), err)
	}
	if !slices.IsSortedFunc(attrs, CompareAttributes) {
		t.Error("not sorted")
	}
	seen := map[string]bool{}
	for _, a := range attrs {
		var got Attribute
		if err := json.Unmarshal(a.Body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Type != a.Type || got.Value != a.Value || got.Comment != a.Value || got.UUID != AttributeUUID(event, a.Type, a.Value) || seen[a.Type+a.Value] {
			t.Fatalf("%s %s: %s", a.Type, a.Value, a.Body)
		}
		seen[a.Type+a.Value] = true
	}
}
